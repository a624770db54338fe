// KV `segserve_rollouts` on a real nats-server: compare-and-set on the KV revision, so of two
// promoters writing the same model exactly one wins (docs/reliability.md item 32).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { ensureNatsObjects } from '../../../services/promoter/src/adapters/nats-setup.js';
import { RolloutConflictError, RolloutStore } from '../../../services/promoter/src/adapters/rollout-store.js';
import { initialRecord } from '../../../services/promoter/src/domain/rollout.js';
import { startNats, type NatsServer } from '../../helpers/nats.js';
import { TEST_NATS_LIMITS } from './support.js';

let nats: NatsServer;
let nc1: NatsConnection;
let nc2: NatsConnection;
let a: RolloutStore;
let b: RolloutStore;

beforeAll(async () => {
  nats = await startNats();
  nc1 = await connect({ servers: nats.url });
  nc2 = await connect({ servers: nats.url });
  a = new RolloutStore((await ensureNatsObjects(nc1, TEST_NATS_LIMITS)).rollouts);
  b = new RolloutStore((await ensureNatsObjects(nc2, TEST_NATS_LIMITS)).rollouts);
});

afterAll(async () => {
  await nc1?.close();
  await nc2?.close();
  await nats?.[Symbol.asyncDispose]();
});

const STABLE = { version: '1', sha256: 'a'.repeat(64), target: 'ipv4:127.0.0.1:5000' };

describe('RolloutStore', () => {
  it('creates once: a second create of the same model loses', async () => {
    const now = new Date();
    const first = await a.write(initialRecord('m1', STABLE, now), null, now);
    expect(first.record).toMatchObject({ model: 'm1', phase: 'Idle', revision: 1, updated_at: now.toISOString() });
    await expect(b.write(initialRecord('m1', STABLE, now), null, now)).rejects.toBeInstanceOf(RolloutConflictError);
    expect((await b.get('m1'))?.record).toEqual(first.record);
  });

  it('two promoters that read the same revision: one write wins, the other must re-read', async () => {
    const now = new Date();
    const base = await a.write(initialRecord('m2', STABLE, now), null, now);
    const readByA = await a.get('m2');
    const readByB = await b.get('m2');
    expect(readByA?.revision).toBe(base.revision);
    const results = await Promise.allSettled([
      a.write({ ...base.record, phase: 'Verifying', experiment_id: 'from-a' }, readByA, now),
      b.write({ ...base.record, phase: 'Verifying', experiment_id: 'from-b' }, readByB, now),
    ]);
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    const lost = results.find((r) => r.status === 'rejected');
    expect(lost?.reason).toBeInstanceOf(RolloutConflictError);
    const winner = results.find((r) => r.status === 'fulfilled');
    const latest = await b.get('m2');
    expect(latest?.record.experiment_id).toBe(winner?.status === 'fulfilled' ? winner.value.record.experiment_id : undefined);
    expect(latest?.record.revision).toBe(2);
    // Re-read, then the loser's write goes through.
    const again = await b.write({ ...(latest?.record ?? base.record), phase: 'Canary' }, latest, now);
    expect(again.record.revision).toBe(3);
  });

  it('lists models and watches one model’s changes', async () => {
    const models = (await a.list()).map((s) => s.record.model);
    expect(models).toEqual(expect.arrayContaining(['m1', 'm2']));
    const ac = new AbortController();
    const seen: string[] = [];
    // The change is written once the watch has delivered the current value: written earlier, it
    // would be the current value itself (on a busy machine the watch's consumer comes up late).
    let watchUp!: () => void;
    const first = new Promise<void>((resolve) => (watchUp = resolve));
    const watching = (async () => {
      for await (const s of b.watch('m1', ac.signal)) {
        seen.push(s.record.phase);
        if (seen.length === 1) watchUp();
        if (seen.length === 2) ac.abort();
      }
    })();
    await first;
    const current = await a.get('m1');
    await a.write({ ...(current?.record ?? initialRecord('m1', STABLE, new Date())), phase: 'Verifying' }, current, new Date());
    await watching;
    expect(seen).toEqual(['Idle', 'Verifying']);
  });
});
