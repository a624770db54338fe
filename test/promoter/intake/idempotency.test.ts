// One result, one decision — whatever happens around it (docs/reliability.md items 22, 23, 32):
// JetStream de-duplication inside the window, the `segserve_decisions` create beyond it, a
// promoter killed between the decision and the ack, two promoters on the same consumer.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import { NATS_NAMES, type DecisionRecord } from '@segserve/proto';
import { DecisionStore } from '../../../services/promoter/src/adapters/decision-store.js';
import { ensureNatsObjects } from '../../../services/promoter/src/adapters/nats-setup.js';
import { spawnProcess, waitFor, type Spawned } from '../../helpers/process.js';
import { ScriptedRunner, TEST_NATS_LIMITS, startWorld, type World } from './support.js';

const WORKER = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures', 'intake-worker.mjs');

describe('the same result twice inside the duplicate window (docs/reliability.md item 22)', () => {
  let world: World;
  const runner = new ScriptedRunner();
  beforeAll(async () => {
    world = await startWorld();
    await world.startIntake(runner);
  });
  afterAll(async () => world?.[Symbol.asyncDispose]());

  it('is stored once by JetStream and decided once', async () => {
    const result = await world.result('tiny-seg', '1');
    const first = await world.publish(result);
    const second = await world.publish({ ...result, created_at: new Date(Date.now() + 1000).toISOString() });
    expect(first.duplicate).toBe(false);
    expect(second).toEqual({ seq: first.seq, duplicate: true });
    const record = await world.waitDecision(result.id);
    expect(record.status).toBe('promoted');
    const jsm = await jetstreamManager(world.nc);
    expect((await jsm.streams.info(NATS_NAMES.experimentsStream)).state.messages).toBe(1);
    expect(runner.calls.map((c) => c.id)).toEqual([result.id]);
  });
});

describe('the same result again after the duplicate window (docs/reliability.md item 22)', () => {
  let world: World;
  const runner = new ScriptedRunner();
  beforeAll(async () => {
    world = await startWorld({ limits: { ...TEST_NATS_LIMITS, duplicateWindowMs: 1_000 } });
    await world.startIntake(runner);
  });
  afterAll(async () => world?.[Symbol.asyncDispose]());

  it('is acknowledged and ignored: the decision create finds the id already decided', async () => {
    const result = await world.result('tiny-seg', '1');
    const first = await world.publish(result);
    const decided = await world.waitDecision(result.id);
    const before = await world.decisions.get(result.id);
    // Publish until JetStream stores it again, i.e. the 1 s window has passed.
    const again = await waitFor(async () => {
      const p = await world.publish(result);
      return p.duplicate ? undefined : p;
    }, { timeoutMs: 30_000, intervalMs: 250, what: 'the duplicate window to pass' });
    expect(again.seq).toBeGreaterThan(first.seq);
    await waitFor(async () => {
      const c = await world.consumerInfo('tiny-seg');
      return c.delivered >= again.seq && c.ackPending === 0;
    }, { what: 'the second copy to be acknowledged' });
    expect(runner.calls.map((c) => c.id)).toEqual([result.id]);
    const after = await world.decisions.get(result.id);
    expect(after).toEqual(before);
    expect(after?.record).toEqual(decided);
    expect(world.log.lines.some((l) => l.includes('result already decided; ignored'))).toBe(true);
  });
});

describe('two writers of one decision (docs/reliability.md item 32)', () => {
  let world: World;
  beforeAll(async () => {
    world = await startWorld();
  });
  afterAll(async () => world?.[Symbol.asyncDispose]());

  it('one create wins by KV revision, the other gets the winner’s record', async () => {
    const nc2 = await connect({ servers: world.nats.url });
    try {
      const other = new DecisionStore((await ensureNatsObjects(nc2, TEST_NATS_LIMITS)).decisions);
      const record = (writer: string): DecisionRecord => ({
        key: 'exp-32',
        experiment_id: 'exp-32',
        model: 'tiny-seg',
        version: '1',
        sha256: 'a'.repeat(64),
        status: 'in_progress',
        stage: 'idempotency',
        reason_code: 'accepted',
        reason: writer,
        claimed: null,
        measured: null,
        stable: null,
        details: null,
        signer: null,
        subject: 'segserve.experiments.tiny-seg',
        stream_seq: 1,
        received_at: new Date().toISOString(),
        decided_at: null,
        attempts: 1,
      });
      const outcomes = await Promise.all([world.decisions.create(record('a')), other.create(record('b'))]);
      expect(outcomes.filter((o) => o.created)).toHaveLength(1);
      const winner = outcomes.find((o) => o.created);
      const loser = outcomes.find((o) => !o.created);
      expect(loser?.record).toEqual(winner?.record);
      expect(loser?.revision).toBe(winner?.revision);
      // A completion against a stale revision loses too.
      const done = { ...(winner?.record as DecisionRecord), status: 'promoted' as const };
      await world.decisions.update(done, winner?.revision as number);
      await expect(other.update({ ...done, status: 'rejected' }, winner?.revision as number)).rejects.toThrow(/no longer the latest/);
      expect((await other.get('exp-32'))?.record.status).toBe('promoted');
    } finally {
      await nc2.close();
    }
  });

  it('two promoters on the same consumers decide every result exactly once', async () => {
    const runnerA = new ScriptedRunner();
    const runnerB = new ScriptedRunner();
    const nc2 = await connect({ servers: world.nats.url });
    try {
      await world.startIntake(runnerA);
      await world.startIntake(runnerB, { nc: nc2, objects: await ensureNatsObjects(nc2, TEST_NATS_LIMITS) });
      const results = [];
      for (let i = 0; i < 6; i++) results.push(await world.result('tiny-seg', '1', { miou: 0.9 + i / 100, latency_ms_p95: 20, peak_rss_mb: 150 }));
      for (const r of results) await world.publish(r);
      for (const r of results) expect((await world.waitDecision(r.id)).status).toBe('promoted');
      const ids = [...runnerA.calls, ...runnerB.calls].map((c) => c.id).sort();
      expect(ids).toEqual(results.map((r) => r.id).sort());
    } finally {
      await nc2.close();
    }
  });
});

describe('a promoter killed around the decision (docs/reliability.md item 23)', () => {
  let world: World;
  const workers: Spawned[] = [];
  beforeAll(async () => {
    world = await startWorld();
  });
  afterAll(async () => {
    for (const w of workers) await w.stop(5_000);
    await world?.[Symbol.asyncDispose]();
  });

  async function worker(crash: string): Promise<Spawned> {
    const w = spawnProcess(process.execPath, [WORKER], {
      name: `intake-worker(${crash || 'normal'})`,
      env: { INTAKE_TEST_NATS_URL: world.nats.url, INTAKE_TEST_SIGNER: world.keys.publicKey, INTAKE_TEST_CRASH: crash, INTAKE_TEST_ACK_WAIT_MS: '3000' },
    });
    workers.push(w);
    await w.waitForLine(/^READY$/, 60_000);
    return w;
  }

  it('killed after the decision, before the ack: the redelivery is a no-op', async () => {
    const a = await worker('after-decision');
    const result = await world.result('tiny-seg', '1', { miou: 0.91, latency_ms_p95: 20, peak_rss_mb: 150 });
    const { seq } = await world.publish(result);
    expect(await a.exited).toBeNull(); // SIGKILL
    expect(a.lines()).toContain(`RUNNER ${result.id}`);
    const decided = await world.decisions.get(result.id);
    expect(decided?.record.status).toBe('promoted');
    expect((await world.consumerInfo('tiny-seg')).ackPending).toBe(1); // never acked

    const b = await worker('');
    await waitFor(async () => {
      const c = await world.consumerInfo('tiny-seg');
      return c.delivered >= seq && c.ackPending === 0 && c.pending === 0;
    }, { timeoutMs: 60_000, what: 'the redelivered result to be acknowledged' });
    expect(b.lines().filter((l) => l.startsWith('RUNNER'))).toEqual([]);
    expect(b.output()).toContain('result already decided; ignored');
    expect(await world.decisions.get(result.id)).toEqual(decided);
    await b.stop(10_000);
  });

  it('killed inside the rollout: the redelivery hands the same candidate to the runner again (resume)', async () => {
    const a = await worker('in-runner');
    const result = await world.result('tiny-seg', '1', { miou: 0.92, latency_ms_p95: 20, peak_rss_mb: 150 });
    await world.publish(result);
    expect(await a.exited).toBeNull();
    expect((await world.decisions.get(result.id))?.record).toMatchObject({ status: 'in_progress', stage: 'rollout', attempts: 1 });

    const b = await worker('');
    const record = await world.waitDecision(result.id);
    expect(record).toMatchObject({ status: 'promoted', attempts: 2 });
    expect(b.lines().filter((l) => l.startsWith('RUNNER'))).toEqual([`RUNNER ${result.id}`]);
    expect(b.output()).toContain('resuming a result in progress');
  });
});
