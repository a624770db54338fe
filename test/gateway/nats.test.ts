// The gateway following KV `segserve_rollouts` on a real nats-server: state changes re-route
// without a restart, a new process in a target list receives traffic (docs/reliability.md item 18), the
// last known state keeps serving while NATS is down and changes made after it returns apply.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { Kvm, type KV } from '@nats-io/kv';
import type { RolloutState } from '@segserve/proto';
import { startNats, type NatsServer } from '../helpers/nats.js';
import { waitFor } from '../helpers/process.js';
import { ipv4Target, metricValue, postImage, startGatewayProc, startInference, tinySeg, TINY_IMAGES, type GatewayProc, type InferenceProc } from './stack.js';

const image = readFileSync(path.join(TINY_IMAGES, 'facade-00.png'));
let nats: NatsServer;
let admin: NatsConnection;
let a: InferenceProc; // tiny-seg v1
let b: InferenceProc; // tiny-seg v2
let c: InferenceProc; // tiny-seg v1, added later
let gateway: GatewayProc;
let kv: KV;
let revision = 0;

const state = (stable: { version: string; target: string } | null, canary: { version: string; target: string; weight: number } | null): RolloutState => ({
  model: 'tiny-seg',
  stable: stable && { sha256: '', ...stable },
  canary: canary && { sha256: '', ...canary },
  phase: canary ? 'Canary' : 'Succeeded',
  updated_at: new Date().toISOString(),
  revision: ++revision,
});

const put = async (s: RolloutState): Promise<void> => {
  await kv.put('tiny-seg', JSON.stringify(s));
};

/** Versions that served `n` sequential requests (status other than 200 recorded as "<status>"). */
async function served(n: number): Promise<string[]> {
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    const res = await postImage(gateway.base, 'tiny-seg', image);
    await res.arrayBuffer();
    out.push(res.status === 200 ? (res.headers.get('segserve-model-version') ?? '?') : String(res.status));
  }
  return out;
}

const requestsOf = async (p: InferenceProc): Promise<number> => metricValue(await (await fetch(`http://127.0.0.1:${p.metricsPort}/metrics`)).text(), 'segserve_inference_requests_total');

beforeAll(async () => {
  nats = await startNats({ jetstream: true, users: [{ user: 'gateway', password: 'gateway-secret' }, { user: 'admin', password: 'admin-secret' }] });
  [a, b, c] = await Promise.all([startInference(tinySeg('1')), startInference(tinySeg('2')), startInference(tinySeg('1'))]);
  // The gateway comes up before the bucket exists and must catch up once it does.
  gateway = await startGatewayProc({ SEGSERVE_NATS_URL: nats.urlFor('gateway') });
  admin = await connect({ servers: nats.url, user: 'admin', pass: 'admin-secret', maxReconnectAttempts: -1, reconnectTimeWait: 250 });
});

afterAll(async () => {
  await admin?.close();
  await gateway?.[Symbol.asyncDispose]();
  await Promise.all([a, b, c].map((p) => p?.[Symbol.asyncDispose]()));
  await nats?.[Symbol.asyncDispose]();
});

describe('routing from NATS KV', () => {
  it('serves nothing before the bucket exists, then follows the state once written', async () => {
    expect((await postImage(gateway.base, 'tiny-seg', image)).status).toBe(404);
    expect((await fetch(`${gateway.base}/readyz`)).status).toBe(503);
    kv = await new Kvm(admin).create('segserve_rollouts', { history: 5 });
    await put(state({ version: '1', target: ipv4Target(a) }, null));
    await waitFor(async () => (await served(1))[0] === '1', { what: 'the gateway to route tiny-seg to v1', timeoutMs: 30_000 });
    await waitFor(async () => (await fetch(`${gateway.base}/readyz`)).status === 200, { what: 'readiness', timeoutMs: 10_000 });
  });

  it('a canary at 100% re-routes without a restart', async () => {
    const pid = gateway.proc.pid;
    await put(state({ version: '1', target: ipv4Target(a) }, { version: '2', target: ipv4Target(b), weight: 100 }));
    await waitFor(async () => (await served(1))[0] === '2', { what: 'requests served by v2', timeoutMs: 30_000 });
    expect(await served(10)).toEqual(Array(10).fill('2'));
    expect(gateway.proc.pid).toBe(pid);
    expect(gateway.proc.hasExited()).toBe(false);
    const text = await (await fetch(`${gateway.base}/metrics`)).text();
    expect(metricValue(text, 'segserve_gateway_route_weight', { model: 'tiny-seg', track: 'canary' })).toBe(100);
  });

  it('an invalid value is ignored; the last good state keeps routing', async () => {
    await kv.put('tiny-seg', '{"model":"tiny-seg","stable":{"version":"1"}}');
    await put(state({ version: '1', target: ipv4Target(a) }, { version: '2', target: ipv4Target(b), weight: 100 })); // a marker after it
    expect(await served(5)).toEqual(Array(5).fill('2'));
    expect(gateway.proc.output()).toContain('ignoring invalid rollout state');
  });

  it('18: a process added to the target list receives traffic', async () => {
    await put(state({ version: '1', target: ipv4Target(a) }, null));
    await waitFor(async () => (await served(1))[0] === '1', { what: 'back to v1 only', timeoutMs: 30_000 });
    const before = await requestsOf(c);
    await put(state({ version: '1', target: ipv4Target(a, c) }, null));
    await waitFor(
      async () => {
        await served(4);
        return (await requestsOf(c)) > before;
      },
      { what: 'the new process to receive requests', timeoutMs: 30_000 },
    );
    // round_robin: both processes share the load from now on.
    const [beforeA, beforeC] = [await requestsOf(a), await requestsOf(c)];
    await served(20);
    expect((await requestsOf(a)) - beforeA).toBeGreaterThanOrEqual(5);
    expect((await requestsOf(c)) - beforeC).toBeGreaterThanOrEqual(5);
  });

  it('keeps serving the last known state while NATS is down, and catches up when it returns', async () => {
    await nats.stop();
    await waitFor(() => gateway.proc.output().includes('nats disconnected'), { what: 'the gateway to notice', timeoutMs: 30_000 });
    expect(await served(10)).toEqual(Array(10).fill('1'));
    expect((await fetch(`${gateway.base}/readyz`)).status).toBe(200);

    await nats.restart();
    await waitFor(() => admin.isClosed() === false && admin.getServer() !== '', { what: 'admin reconnect' });
    kv = await new Kvm(admin).open('segserve_rollouts');
    await waitFor(
      async () => {
        try {
          await put(state({ version: '2', target: ipv4Target(b) }, null));
          return true;
        } catch {
          return false;
        }
      },
      { what: 'a write after the restart', timeoutMs: 30_000, intervalMs: 500 },
    );
    await waitFor(async () => (await served(1))[0] === '2', { what: 'the gateway to follow the state written after the restart', timeoutMs: 60_000, intervalMs: 250 });
    expect(await served(5)).toEqual(Array(5).fill('2'));
  });

  it('a deleted key removes the model', async () => {
    await kv.delete('tiny-seg');
    await waitFor(async () => (await postImage(gateway.base, 'tiny-seg', image)).status === 404, { what: 'tiny-seg to disappear', timeoutMs: 30_000 });
  });
});
