// `segserve stack` (docs/architecture.md#commands-and-environment): the whole local system from one command — it says what
// runs where, serves through the gateway, answers `segserve rollout status`, and Ctrl-C
// stops every process it started.
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort, requireBinary, spawnSegserve, tempDir, waitFor, type Spawned, type TempDir } from '../../helpers/process.js';
import { NATS_INSTALL_HINT } from '../../helpers/nats.js';
import { FIXTURES, MODEL } from './harness.js';

let stack: Spawned | undefined;
let dir: TempDir | undefined;

afterAll(async () => {
  await stack?.stop(60_000);
  await dir?.[Symbol.asyncDispose]();
}, 120_000);

function portOpen(port: number): Promise<boolean> {
  return fetch(`http://127.0.0.1:${port}/`).then(
    () => true,
    (err: unknown) => !/ECONNREFUSED/.test(String((err as { cause?: unknown }).cause)),
  );
}

describe('segserve stack', () => {
  it('starts nats, prometheus, promoter (with the first stable), gateway; Ctrl-C stops them all', async () => {
    requireBinary('nats-server', NATS_INSTALL_HINT);
    dir = await tempDir('segserve-stack-test-');
    const policy = path.join(dir.path, 'tiny-seg.json');
    await writeFile(policy, JSON.stringify({ model: MODEL, objectives: [{ metric: 'miou', better: 'higher' }] }));
    const [nats, http, grpc, metrics, prom] = await Promise.all([freePort(), freePort(), freePort(), freePort(), freePort()]);
    stack = spawnSegserve(['stack', '--model', path.join(FIXTURES, MODEL, '2'), '--policy', policy, '--nats-port', String(nats), '--http-port', String(http), '--grpc-port', String(grpc), '--metrics-port', String(metrics), '--prometheus-port', String(prom)], { name: 'segserve stack' });
    await stack.waitForLine(/segserve stack is running/, 240_000);
    const out = stack.output();
    expect(out).toContain(`gateway      http://127.0.0.1:${http}/`);
    expect(out).toMatch(/inference {4}tiny-seg 2 at ipv4:127\.0\.0\.1:\d+/);
    expect(out).toContain(`nats         nats://127.0.0.1:${nats}`);
    expect(out).toContain(`prometheus   http://127.0.0.1:${prom}`);
    expect(out).toMatch(/publish --model models\/facade-ads\/<version> --seed-file \S+publisher\.seed/);

    const ready = (await (await fetch(`http://127.0.0.1:${http}/readyz`)).json()) as { ready: boolean };
    expect(ready.ready).toBe(true);
    const status = spawnSegserve(['rollout', 'status', MODEL], { env: { SEGSERVE_NATS_URL: `nats://127.0.0.1:${nats}` } });
    expect(await status.exited).toBe(0);
    expect(status.output()).toMatch(/tiny-seg: Idle\n {2}stable {3}2 /);
    // Prometheus finds the inference process through the promoter's service discovery.
    await waitFor(
      async () => {
        const res = (await (await fetch(`http://127.0.0.1:${prom}/api/v1/targets`)).json()) as { data: { activeTargets: { labels: Record<string, string>; health: string }[] } };
        return res.data.activeTargets.some((t) => t.labels['job'] === 'inference' && t.health === 'up');
      },
      { timeoutMs: 60_000, intervalMs: 1_000, what: 'prometheus scraping the inference process' },
    );

    const inference = Number(/tiny-seg 2 at ipv4:127\.0\.0\.1:(\d+)/.exec(out)?.[1]);
    expect(await portOpen(inference)).toBe(true);
    stack.kill('SIGINT');
    expect(await stack.exited).toBe(0);
    for (const port of [nats, http, grpc, metrics, prom, inference]) expect(await portOpen(port), `port ${port}`).toBe(false);
  }, 400_000);
});
