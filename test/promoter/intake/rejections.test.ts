// Results the intake must refuse before anything runs (docs/reliability.md items 24, 25, 26; docs/architecture.md#promotion):
// never redelivered, never handed to the runner. Signed results are recorded in
// segserve_decisions with a machine-readable reason and the figures behind it, and announced on
// ROLLOUT_EVENTS; results rejected before their signature is verified are only counted (the
// intake's bounded record), so that unsigned messages can never write the decisions bucket.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jetstreamManager } from '@nats-io/jetstream';
import { NATS_NAMES, type DecisionEvent } from '@segserve/proto';
import { generateSigningKeys } from '../../../services/promoter/src/adapters/signing.js';
import type { Intake } from '../../../services/promoter/src/intake/intake.js';
import type { UnverifiedRejection } from '../../../services/promoter/src/intake/unverified.js';
import { waitFor } from '../../helpers/process.js';
import { ScriptedRunner, startWorld, type World } from './support.js';

let world: World;
let intake: Intake;
// Test double for docs/reliability.md item 25, "before any Kubernetes or process call": the runner is the
// only way from the intake to the deployer, so a runner that records calls shows none happened.
const runner = new ScriptedRunner();

beforeAll(async () => {
  world = await startWorld();
  intake = await world.startIntake(runner);
});

afterAll(async () => {
  await world?.[Symbol.asyncDispose]();
});

async function eventsFor(model: string): Promise<DecisionEvent[]> {
  const jsm = await jetstreamManager(world.nc);
  const { state } = await jsm.streams.info(NATS_NAMES.rolloutEventsStream);
  const out: DecisionEvent[] = [];
  for (let seq = state.first_seq; seq <= state.last_seq && state.messages > 0; seq++) {
    const m = await jsm.streams.getMessage(NATS_NAMES.rolloutEventsStream, { seq });
    if (m && m.subject === NATS_NAMES.rolloutEventsSubject(model)) out.push(m.json<DecisionEvent>());
  }
  return out;
}

/** Each case its own experiment id: JetStream drops a repeated Nats-Msg-Id inside its window. */
function unique<T extends { id: string }>(result: T, tag: string): T {
  return { ...result, id: `${result.id}-${tag.replace(/[^A-Za-z0-9]+/g, '-').slice(0, 40)}` };
}

async function bucketKeys(): Promise<string[]> {
  const keys: string[] = [];
  for await (const k of await world.objects.decisions.keys()) keys.push(k);
  return keys;
}

/** The intake's record of message `seq`, once it has been counted. */
function counted(seq: number): Promise<UnverifiedRejection> {
  return waitFor(async () => Promise.resolve(intake.unverified.summary().latest.find((r) => r.stream_seq === seq)), { what: `rejection of message ${seq} counted` });
}

async function expectTerminated(seq: number, model = 'tiny-seg'): Promise<UnverifiedRejection> {
  const before = await bucketKeys();
  const record = await counted(seq);
  // Terminated, not left for redelivery: nothing pending or in flight, no redelivery.
  await waitFor(async () => {
    const c = await world.consumerInfo(model);
    return c.ackPending === 0 && c.pending === 0 && c.delivered >= seq;
  }, { what: 'the consumer to move past the message' });
  expect((await world.consumerInfo(model)).redelivered).toBe(0);
  // Nothing written to the decisions bucket for an unauthenticated message.
  expect(await bucketKeys()).toEqual(before);
  return record;
}

describe('malformed results (docs/reliability.md item 24)', () => {
  it.each([
    ['an unknown field', (r: object) => JSON.stringify({ ...r, extra: 1 }), 'schema_invalid', /must NOT have additional properties 'extra'/],
    ['a NaN metric (1e999)', (r: object) => JSON.stringify(r).replace('"miou":0.97', '"miou":1e999'), 'schema_invalid', /metrics.miou not a finite number/],
    ['text that is not JSON', () => '{"id": NaN}', 'invalid_json', /not UTF-8 JSON/],
    ['a path in the version', (r: object) => JSON.stringify({ ...r, version: '../../etc' }), 'schema_invalid', /version must match pattern/],
  ])('%s → terminated and counted, never promoted', async (name, body, code, reason) => {
    const result = unique(await world.result('tiny-seg', '1'), name);
    const { seq } = await world.publish(result, { body: body(result) });
    const record = await expectTerminated(seq);
    expect(record).toMatchObject({ reason_code: code, model: 'tiny-seg', subject: 'segserve.experiments.tiny-seg' });
    expect(record.reason).toMatch(reason);
    expect(runner.calls).toHaveLength(0);
    // The id the message claimed was not reserved: a valid result with it can still be decided.
    expect(await world.decisions.get(result.id)).toBeNull();
  });

  it('a result for a model without a policy is counted and terminated by the catch-all consumer', async () => {
    const result = await world.result('tiny-sigmoid', '1');
    const { seq } = await world.publish(result);
    const record = await counted(seq);
    // The model label of an unknown model is not the attacker's string (metric cardinality).
    expect(record).toMatchObject({ reason_code: 'unknown_model', model: '(unknown)', subject: 'segserve.experiments.tiny-sigmoid', claimed_id: null });
    expect(await world.decisions.get(`unverified-${seq}`)).toBeNull();
    const jsm = await jetstreamManager(world.nc);
    const sweeper = await jsm.consumers.info(NATS_NAMES.experimentsStream, 'intake-unknown-models');
    await waitFor(async () => (await jsm.consumers.info(NATS_NAMES.experimentsStream, 'intake-unknown-models')).num_ack_pending === 0, { what: 'sweeper ack' });
    expect(sweeper.num_redelivered).toBe(0);
    expect(runner.calls).toHaveLength(0);
  });

  it('a result whose body names another model than its subject', async () => {
    const result = await world.result('tiny-prob', '1');
    const { seq } = await world.publish(result, { subject: NATS_NAMES.experimentsSubject('tiny-seg') });
    const record = await expectTerminated(seq);
    expect(record).toMatchObject({ reason_code: 'subject_mismatch' });
    expect(record.reason).toMatch(/for model 'tiny-prob' but was published on 'segserve.experiments.tiny-seg'/);
  });

  it('a result whose Nats-Msg-Id is not its id', async () => {
    const result = await world.result('tiny-seg', '1', { miou: 0.971, latency_ms_p95: 20, peak_rss_mb: 150 });
    const { seq } = await world.publish(result, { msgId: 'something-else' });
    const record = await expectTerminated(seq);
    expect(record).toMatchObject({ reason_code: 'id_mismatch', claimed_id: null });
    expect(record.reason).toContain(`'something-else' is not the result's id '${result.id}'`);
  });
});

describe('signatures (docs/reliability.md item 25)', () => {
  const stranger = generateSigningKeys();
  it.each([
    ['no signature headers', { signature: null, signer: null }, 'signature_missing'],
    ['a signer that is not configured', { seed: stranger.seed }, 'signer_unknown'],
    ['a signature by another key under a trusted signer', { seed: stranger.seed, signer: 'TRUSTED' }, 'signature_invalid'],
    ['a garbage signature', { signature: 'AAAA' }, 'signature_invalid'],
  ] as const)('%s → rejected before any runner (deployer) call', async (name, tweaks, code) => {
    const result = unique(await world.result('tiny-seg', '1', { miou: 0.972, latency_ms_p95: 20, peak_rss_mb: 150 }), name);
    const t = { ...tweaks, ...('signer' in tweaks && tweaks.signer === 'TRUSTED' ? { signer: world.keys.publicKey } : {}) };
    const { seq } = await world.publish(result, t);
    const record = await expectTerminated(seq);
    expect(record).toMatchObject({ reason_code: code, claimed_id: result.id });
    expect(runner.calls).toHaveLength(0);
    expect(await world.decisions.get(result.id)).toBeNull();
  });

  it('a result altered after signing is rejected', async () => {
    const result = await world.result('tiny-seg', '1', { miou: 0.973, latency_ms_p95: 20, peak_rss_mb: 150 });
    const signedFor = { ...result, metrics: { ...result.metrics, miou: 0.5 } };
    const h = await world.publish(signedFor, { body: JSON.stringify(result) });
    const record = await expectTerminated(h.seq);
    expect(record.reason_code).toBe('signature_invalid');
    expect(runner.calls).toHaveLength(0);
  });
});

describe('artifacts (docs/reliability.md item 26)', () => {
  it('model.onnx missing from the object store → rejected with the object name', async () => {
    const result = await world.result('tiny-seg', '1', { miou: 0.97, latency_ms_p95: 21, peak_rss_mb: 150 });
    const missing = { ...result, version: '99', id: `${result.id}-v99` };
    await world.publish(missing);
    const record = await world.waitDecision(missing.id);
    expect(record).toMatchObject({ status: 'rejected', stage: 'artifact', reason_code: 'artifact_missing', details: { object: 'segserve_models/tiny-seg/99/model.onnx' } });
    expect(runner.calls.map((c) => c.id)).not.toContain(missing.id);
  });

  it('a digest that differs from the stored bytes → rejected with both digests', async () => {
    const result = await world.result('tiny-seg', '2', { miou: 0.97, latency_ms_p95: 22, peak_rss_mb: 150 });
    const other = await world.result('tiny-seg', '1');
    // Same size as tiny-seg/2's model.onnx, other bytes: only a real hash can tell.
    expect(other.artifact.size).toBe(result.artifact.size);
    const forged = { ...result, id: `${result.id}-forged`, artifact: { ...result.artifact, sha256: other.artifact.sha256 } };
    await world.publish(forged);
    const record = await world.waitDecision(forged.id);
    expect(record).toMatchObject({
      stage: 'artifact',
      reason_code: 'artifact_digest_mismatch',
      details: { stored_sha256: result.artifact.sha256, claimed_sha256: other.artifact.sha256 },
    });
  });

  it('a size that differs → rejected', async () => {
    const result = await world.result('tiny-seg', '2', { miou: 0.97, latency_ms_p95: 23, peak_rss_mb: 150 });
    const forged = { ...result, id: `${result.id}-size`, artifact: { ...result.artifact, size: result.artifact.size + 1 } };
    await world.publish(forged);
    expect(await world.waitDecision(forged.id)).toMatchObject({ reason_code: 'artifact_size_mismatch', details: { stored_size: result.artifact.size } });
  });
});

describe('policy on the claims', () => {
  it('a claim under a hard limit is rejected with the figures, before the runner', async () => {
    const result = await world.result('tiny-seg', '1', { miou: 0.4, latency_ms_p95: 20, peak_rss_mb: 150 });
    await world.publish(result);
    const record = await world.waitDecision(result.id);
    expect(record).toMatchObject({ status: 'rejected', stage: 'policy', reason_code: 'limit_exceeded', claimed: { miou: 0.4 } });
    expect(record.reason).toBe('Not promoted: miou 0.4 is below the minimum 0.5.');
    expect(record.details).toMatchObject({ policy: { limits: expect.arrayContaining([expect.objectContaining({ key: 'miou_min', value: 0.4, ok: false })]) } });
    expect(runner.calls.map((c) => c.id)).not.toContain(result.id);
  });

  it('a result within the limits goes to the runner and its outcome is recorded; every signed decision is on ROLLOUT_EVENTS', async () => {
    const result = await world.result('tiny-seg', '1', { miou: 0.975, latency_ms_p95: 20, peak_rss_mb: 150 });
    await world.publish(result);
    const record = await world.waitDecision(result.id);
    expect(record).toMatchObject({ status: 'promoted', stage: 'rollout', reason_code: 'promoted', attempts: 1, signer: world.keys.publicKey });
    expect(runner.calls.map((c) => c.id)).toEqual([result.id]);
    expect(runner.calls[0]).toEqual({ id: result.id, ref: { model: 'tiny-seg', version: '1', sha256: result.artifact.sha256 }, claimed: result.metrics, goldenSha256: world.goldenSha });
    const events = await eventsFor('tiny-seg');
    expect(events.map((e) => e.reason_code)).toEqual(expect.arrayContaining(['artifact_missing', 'artifact_digest_mismatch', 'limit_exceeded', 'promoted']));
    // Unauthenticated results are counted, not announced one by one.
    const unverifiedCodes = ['schema_invalid', 'invalid_json', 'signature_missing', 'signer_unknown', 'signature_invalid', 'subject_mismatch', 'id_mismatch'];
    expect(events.filter((e) => unverifiedCodes.includes(e.reason_code))).toEqual([]);
    expect(events.every((e) => e.type === 'decision' && e.model === 'tiny-seg')).toBe(true);
    expect(intake.unverified.summary().counts).toMatchObject({ 'tiny-seg/schema_invalid': 3, 'tiny-seg/invalid_json': 1, 'tiny-seg/signature_invalid': 3, '(unknown)/unknown_model': 1 });
    expect(await bucketKeys()).not.toContainEqual(expect.stringMatching(/^unverified-/));
  });
});
