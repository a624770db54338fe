// The local driver against real processes on loopback: a stand-in inference that speaks the
// process contract (serving line, grpc.health.v1) and can be told to crash or hang.
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { LocalDeployer, targetPorts } from '../../../services/promoter/src/adapters/local-deployer.js';
import { modelResolver } from '../../../services/promoter/src/adapters/local-models.js';
import { healthServing } from '../../../services/promoter/src/adapters/local-process.js';
import { silentLogger } from '@segserve/runtime';
import type { ModelRef, Readiness } from '../../../services/promoter/src/domain/ports.js';
import { REPO_ROOT, spawnProcess, tempDir, waitFor, type TempDir } from '../../helpers/process.js';

const FAKE = path.join(REPO_ROOT, 'test', 'promoter', 'rollout', 'fake-inference.mjs');
const ROOTS = [path.join(REPO_ROOT, 'test', 'fixtures', 'models')];
const V1: ModelRef = { model: 'tiny-seg', version: '1', sha256: '2123905271aec3c90af7343054ffc87032094fd07d6a1a255b4dea4921240b51' };
const V2: ModelRef = { model: 'tiny-seg', version: '2', sha256: 'eeea2dd4def67a19801160c228bd94fdc2ce05817618bf9a6c5a64f8e8dce920' };

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function deployer(options: { modes?: Record<string, string>; readyTimeoutMs?: number; maxRestarts?: number; dir?: TempDir } = {}): Promise<{ d: LocalDeployer; dir: TempDir }> {
  const dir = options.dir ?? (await tempDir('segserve-local-'));
  const d = await LocalDeployer.create({
    command: [process.execPath, FAKE],
    env: { PATH: process.env['PATH'] ?? '' },
    resolve: modelResolver({ roots: ROOTS }),
    stateDir: dir.path,
    envFor: (ref) => {
      const mode = options.modes?.[ref.version];
      return mode ? { FAKE_MODE: mode, SEGSERVE_FAULT_ERROR_RATIO: '0.5' } : undefined;
    },
    readyTimeoutMs: options.readyTimeoutMs ?? 60_000,
    maxRestarts: options.maxRestarts ?? 1,
    drainMs: 200,
    stopGraceMs: 5_000,
    log: silentLogger,
  });
  cleanups.push(async () => {
    await d.close();
    if (!options.dir) await dir[Symbol.asyncDispose]();
  });
  return { d, dir };
}

function settled(d: LocalDeployer, track: 'stable' | 'canary', model = 'tiny-seg'): Promise<Readiness> {
  return waitFor(
    async () => {
      const r = await d.readiness(model, track);
      return r.state === 'progressing' ? undefined : r;
    },
    { timeoutMs: 60_000, what: `${track} readiness` },
  );
}

function onlyPort(target: string): number {
  const [port] = targetPorts(target);
  if (port === undefined) throw new Error(`no port in ${target}`);
  return port;
}

describe('local deployer', () => {
  it('starts a canary, reports progress then a loopback target that answers health checks', async () => {
    const { d } = await deployer();
    await d.deployCanary(V2);
    expect((await d.readiness('tiny-seg', 'canary')).state).toBe('progressing');
    const ready = await settled(d, 'canary');
    expect(ready).toMatchObject({ state: 'ready', target: expect.stringMatching(/^ipv4:127\.0\.0\.1:\d+$/) });
    expect(await healthServing(onlyPort((ready as { target: string }).target))).toBe(true);
    expect(d.metricsTargets('tiny-seg', 'canary')).toHaveLength(1);
    expect(await d.readiness('tiny-seg', 'stable')).toMatchObject({ state: 'failed' });
    // Idempotent: the same version again changes nothing.
    await d.deployCanary(V2);
    expect(await d.readiness('tiny-seg', 'canary')).toEqual(ready);
  });

  it('promotes by handing the canary processes to the stable track, and stops the old stable only when pruned', async () => {
    const { d } = await deployer();
    await d.deployStable(V1);
    const oldStable = (await settled(d, 'stable')) as { target: string };
    await d.deployCanary(V2);
    const canary = (await settled(d, 'canary')) as { target: string };

    await d.deployStable(V2);
    expect(await d.readiness('tiny-seg', 'stable')).toEqual({ state: 'ready', target: canary.target });
    expect((await d.readiness('tiny-seg', 'canary')).state).toBe('failed');

    // Still routed to: the old stable keeps serving.
    await d.prune('tiny-seg', [oldStable.target, canary.target]);
    await new Promise((r) => setTimeout(r, 500));
    expect(await healthServing(onlyPort(oldStable.target))).toBe(true);
    // No longer routed: stopped after the drain time.
    await d.prune('tiny-seg', [canary.target]);
    await waitFor(async () => !(await healthServing(onlyPort(oldStable.target), 500)), { timeoutMs: 30_000, what: 'old stable stopped' });
    expect(await healthServing(onlyPort(canary.target))).toBe(true);
  });

  it('starts a version again after its old processes stopped (a fresh process, not the old log line)', async () => {
    const { d } = await deployer();
    await d.deployStable(V1);
    const first = (await settled(d, 'stable')) as { target: string };
    await d.deployStable(V2);
    const v2 = (await settled(d, 'stable')) as { target: string };
    await d.prune('tiny-seg', [v2.target]);
    await waitFor(async () => !(await healthServing(onlyPort(first.target), 500)), { timeoutMs: 30_000, what: 'v1 stopped' });
    // Rollback to v1: a new process, whose own serving line gives its own port.
    await d.deployStable(V1);
    const again = (await settled(d, 'stable')) as { target: string };
    expect(again.target).toMatch(/^ipv4:/);
    expect(await healthServing(onlyPort(again.target))).toBe(true);
  });

  it('reports failed when the version crash-loops before serving', async () => {
    const { d } = await deployer({ modes: { '2': 'crash' }, maxRestarts: 1 });
    await d.deployCanary(V2);
    const r = await settled(d, 'canary');
    expect(r.state).toBe('failed');
    expect((r as { reason: string }).reason).toMatch(/crash loop.*exited with code 3.*fake crash/);
  });

  it('reports failed when the version never becomes ready', async () => {
    const { d } = await deployer({ modes: { '2': 'hang' }, readyTimeoutMs: 1_500, maxRestarts: 0 });
    await d.deployCanary(V2);
    const r = await settled(d, 'canary');
    expect(r).toMatchObject({ state: 'failed', reason: expect.stringMatching(/not serving after 1500 ms/) });
  });

  it('restarts a crashed process on the same port, then gives up on a crash loop', async () => {
    const { d } = await deployer({ modes: { '2': 'crash-after-ready' }, maxRestarts: 2 });
    await d.deployCanary(V2);
    const first = await settled(d, 'canary');
    expect(first.state).toBe('ready');
    // After the crash it comes back on the same target (the route stays valid)…
    let sawRestart = false;
    const again = await waitFor(
      async () => {
        const x = await d.readiness('tiny-seg', 'canary');
        if (x.state !== 'ready') sawRestart = true;
        return sawRestart && x.state === 'ready' ? x : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 50, what: 'the restarted canary' },
    );
    expect(again).toEqual(first);
    // …until the crashes count as a loop.
    const r = await waitFor(
      async () => {
        const x = await d.readiness('tiny-seg', 'canary');
        return x.state === 'failed' ? x : undefined;
      },
      { timeoutMs: 60_000, what: 'crash loop detected' },
    );
    expect(r.reason).toMatch(/crash loop \(3 failures/);
  });

  it('passes per-version environment to that version only', async () => {
    const { d, dir } = await deployer({ modes: { '2': 'ok' } });
    await d.deployStable(V1);
    await d.deployCanary(V2);
    await settled(d, 'stable');
    await settled(d, 'canary');
    const { readFile } = await import('node:fs/promises');
    const log1 = await readFile(path.join(dir.path, 'logs', 'tiny-seg-1-0.log'), 'utf8');
    const log2 = await readFile(path.join(dir.path, 'logs', 'tiny-seg-2-0.log'), 'utf8');
    expect(log1).toContain('"env_fault":null');
    expect(log2).toContain('"env_fault":"0.5"');
  });

  it('adopts the processes a previous promoter left running', async () => {
    const dir = await tempDir('segserve-local-');
    cleanups.push(async () => {
      await dir[Symbol.asyncDispose]();
    });
    const orphan = spawnProcess(process.execPath, [FAKE, 'inference', '--model', 'x'], { name: 'orphan' });
    cleanups.push(async () => void (await orphan.stop(5_000)));
    const serving = await orphan.waitForStartup('inference');
    const entry = { model: 'tiny-seg', version: '1', sha256: V1.sha256, slot: 'stable', index: 0, pid: orphan.pid, grpc_port: serving.grpc_port, metrics_port: serving.metrics_port, log_file: path.join(dir.path, 'logs', 'orphan.log') };
    // A second one the previous promoter was draining: stopped, not adopted.
    const draining = spawnProcess(process.execPath, [FAKE, 'inference', '--model', 'y'], { name: 'draining' });
    cleanups.push(async () => void (await draining.stop(5_000)));
    const drainingPorts = await draining.waitForStartup('inference');
    const retiring = { ...entry, version: '2', sha256: V2.sha256, slot: 'retiring', pid: draining.pid, grpc_port: drainingPorts.grpc_port, metrics_port: drainingPorts.metrics_port };
    // And one still starting when its promoter died: stopped too, never leaked.
    const starting = spawnProcess(process.execPath, [FAKE, 'inference', '--model', 'z'], { name: 'starting', env: { FAKE_MODE: 'hang' } });
    cleanups.push(async () => void (await starting.stop(5_000)));
    const half = { ...entry, version: '2', sha256: V2.sha256, slot: 'canary', pid: starting.pid, grpc_port: 0, metrics_port: 0 };
    await writeFile(path.join(dir.path, 'processes.json'), JSON.stringify({ processes: [entry, { ...entry, pid: 999_999, slot: 'canary' }, retiring, half] }));

    const { d } = await deployer({ dir });
    expect(await draining.exited).toBe(0);
    await starting.exited;
    expect(starting.hasExited()).toBe(true);
    expect(await d.readiness('tiny-seg', 'stable')).toEqual({ state: 'ready', target: `ipv4:127.0.0.1:${serving.grpc_port}` });
    expect((await d.readiness('tiny-seg', 'canary')).state).toBe('failed');
    // Deploying the same version keeps the adopted process; close() stops it.
    await d.deployStable(V1);
    expect(await d.readiness('tiny-seg', 'stable')).toEqual({ state: 'ready', target: `ipv4:127.0.0.1:${serving.grpc_port}` });
    await d.close();
    expect(await orphan.exited).toBe(0);
  });
});
