// Flood-proof intake (issue 11 item 4): anyone allowed to publish on `segserve.experiments.>`
// without the signing key can send junk by the thousand. Junk is counted, never stored in
// `segserve_decisions` (a small bucket here, which 10,000 records would overflow many times), and
// a genuine signed result sent in the middle of the flood is still decided. A full decisions
// bucket makes the intake record the failure and move on instead of sticking.
import { afterEach, expect, it } from 'vitest';
import { EXPERIMENT_HEADERS, NATS_NAMES, type ExperimentResult } from '@segserve/proto';
import { headers } from '@nats-io/transport-node';
import { waitFor } from '../../helpers/process.js';
import { ScriptedRunner, TEST_NATS_LIMITS, startWorld, type World } from './support.js';

let world: World | undefined;
afterEach(async () => {
  await world?.[Symbol.asyncDispose]();
  world = undefined;
});

async function bucketKeys(w: World): Promise<string[]> {
  const keys: string[] = [];
  for await (const k of await w.objects.decisions.keys()) keys.push(k);
  return keys.sort();
}

/** Schema-valid results with padded claims (~2 KB), published without waiting for acks. */
function sendJunk(w: World, template: ExperimentResult, from: number, count: number): void {
  const padding = Object.fromEntries(Array.from({ length: 60 }, (_, i) => [`padding_metric_${i}`, i / 7]));
  for (let i = from; i < from + count; i++) {
    const junk = { ...template, id: `junk-${i}`, metrics: { ...template.metrics, ...padding } };
    const h = headers();
    h.set(EXPERIMENT_HEADERS.msgId, junk.id);
    if (i % 3 === 1) {
      // A trusted signer with a signature that does not verify: the intake pays for the check.
      h.set(EXPERIMENT_HEADERS.signer, w.keys.publicKey);
      h.set(EXPERIMENT_HEADERS.signature, Buffer.alloc(64, i % 251).toString('base64url'));
    }
    const body = i % 3 === 2 ? `{"id": "junk-${i}", "not json` : JSON.stringify(junk);
    w.nc.publish(NATS_NAMES.experimentsSubject(template.model), body, { headers: h });
  }
}

it('10,000 junk results are counted, not stored, and a signed result sent among them is decided', async () => {
  // 10,000 decision records of ~2 KB would need ~20 MB: a 1 MiB bucket would be full after ~500.
  world = await startWorld({ limits: { ...TEST_NATS_LIMITS, decisionsMaxBytes: 1024 * 1024, experimentsMaxBytes: 128 * 1024 * 1024 } });
  const w = world;
  const runner = new ScriptedRunner();
  const intake = await w.startIntake(runner);
  const template = await w.result('tiny-seg', '1');
  const genuine = await w.result('tiny-seg', '2', { miou: 0.975, latency_ms_p95: 20, peak_rss_mb: 150 });

  sendJunk(w, template, 0, 5_000);
  await w.nc.flush();
  const { seq } = await w.publish(genuine);
  sendJunk(w, template, 5_000, 5_000);
  await w.nc.flush();

  const decided = await w.waitDecision(genuine.id, undefined, 300_000);
  expect(decided).toMatchObject({ status: 'promoted', stream_seq: seq, signer: w.keys.publicKey });
  expect(runner.calls.map((c) => c.id)).toEqual([genuine.id]);

  await waitFor(() => Promise.resolve(intake.unverified.summary().total === 10_000 ? true : undefined), { timeoutMs: 300_000, intervalMs: 250, what: 'all 10,000 junk results counted' });
  const summary = intake.unverified.summary();
  expect(summary.counts).toEqual({ 'tiny-seg/signature_missing': 3_334, 'tiny-seg/signature_invalid': 3_333, 'tiny-seg/invalid_json': 3_333 });
  // The bounded record keeps the latest, not all of them.
  expect(summary.latest.length).toBe(100);
  expect(summary.latest.at(-1)?.stream_seq).toBeGreaterThan(seq);
  // Only the signed result wrote the decisions bucket.
  expect(await bucketKeys(w)).toEqual([genuine.id]);
  // The log carries a sample, not one line per message.
  const logged = w.log.lines.filter((l) => l.includes('result rejected before authentication')).length;
  expect(logged).toBeGreaterThan(0);
  expect(logged).toBeLessThan(100);
  const consumer = await w.consumerInfo('tiny-seg');
  expect(consumer).toMatchObject({ pending: 0, ackPending: 0, redelivered: 0 });
});

it('a full decisions bucket: the intake records the failure, moves on, and decides results again once there is room', async () => {
  // Room for about one result's records (create + decision, ~1.3 KB each).
  world = await startWorld({ limits: { ...TEST_NATS_LIMITS, decisionsMaxBytes: 4 * 1024 } });
  const w = world;
  const runner = new ScriptedRunner();
  const intake = await w.startIntake(runner, { consumer: { ackWaitMs: 5_000, maxDeliver: 5 } });
  const first = await w.result('tiny-seg', '1', { miou: 0.971, latency_ms_p95: 20, peak_rss_mb: 150 });
  await w.publish(first);
  expect(await w.waitDecision(first.id)).toMatchObject({ status: 'promoted' });

  const blocked = await Promise.all([0.972, 0.973, 0.974].map((miou) => w.result('tiny-seg', '2', { miou, latency_ms_p95: 20, peak_rss_mb: 150 })));
  for (const r of blocked) await w.publish(r);
  // Each is given up on after a few quick attempts; none holds the queue for the next.
  await waitFor(() => Promise.resolve(intake.unverified.summary().failures.length >= blocked.length ? true : undefined), { timeoutMs: 120_000, what: 'the failures recorded' });
  const failures = intake.unverified.summary().failures;
  expect(failures.map((f) => f.experiment_id)).toEqual(blocked.map((r) => r.id));
  expect(failures.every((f) => /^decisions bucket: (create|update) \S+ failed: maximum bytes exceeded/.test(f.error))).toBe(true);
  await waitFor(async () => ((await w.consumerInfo('tiny-seg')).ackPending === 0 && (await w.consumerInfo('tiny-seg')).pending === 0 ? true : undefined), { what: 'the consumer to move on' });
  expect(runner.calls.map((c) => c.id)).toEqual([first.id]);

  // Room again (an operator purged or grew the bucket): the next result is decided as usual.
  await w.objects.jsm.streams.purge(`KV_${NATS_NAMES.decisionsKv}`);
  const next = await w.result('tiny-seg', '2', { miou: 0.975, latency_ms_p95: 20, peak_rss_mb: 150 });
  await w.publish(next);
  expect(await w.waitDecision(next.id)).toMatchObject({ status: 'promoted' });
});
