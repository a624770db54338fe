// A newer result mid-rollout waits (docs/reliability.md item 31): one message in flight per model
// consumer, so the next result of the same model is not even delivered until the running one
// is decided — while another model's result goes ahead.
import { afterAll, beforeAll, expect, it } from 'vitest';
import { waitFor } from '../../helpers/process.js';
import { ScriptedRunner, gate, startWorld, type World } from './support.js';

let world: World;
const release = gate();
const runner = new ScriptedRunner(async (candidate, hooks) => {
  if (candidate.id.startsWith('first')) {
    // A long rollout: longer than the 5 s ack wait, kept alive by the intake's heartbeats.
    await release.promise;
    hooks.working();
  }
  return { outcome: 'promoted', reason: `promoted ${candidate.id}` };
});

beforeAll(async () => {
  world = await startWorld();
  await world.startIntake(runner);
});

afterAll(async () => world?.[Symbol.asyncDispose]());

it('the second result of a model waits until the first is decided; other models do not wait', async () => {
  const first = { ...(await world.result('tiny-seg', '1', { miou: 0.95, latency_ms_p95: 20, peak_rss_mb: 150 })), id: 'first-rollout' };
  const second = { ...(await world.result('tiny-seg', '2', { miou: 0.96, latency_ms_p95: 20, peak_rss_mb: 150 })), id: 'second-rollout' };
  const other = { ...(await world.result('tiny-prob', '1', { miou: 0.9, latency_ms_p95: 20, peak_rss_mb: 150 })), id: 'other-model' };
  await world.publish(first);
  await waitFor(() => runner.started.includes('first-rollout'), { what: 'the first rollout to start' });
  await world.publish(second);
  await world.publish(other);

  // The other model is decided while the first rollout still runs.
  expect((await world.waitDecision('other-model')).status).toBe('promoted');
  // Past several ack waits: the first is still in flight (heartbeats), the second not delivered.
  await waitFor(async () => (await world.consumerInfo('tiny-seg')).pending === 1, { what: 'the second result to be queued' });
  const t0 = Date.now();
  await waitFor(() => Date.now() - t0 > 12_000 || undefined, { timeoutMs: 20_000, what: 'two ack waits' });
  const c = await world.consumerInfo('tiny-seg');
  expect(c).toMatchObject({ ackPending: 1, pending: 1, redelivered: 0 });
  expect(runner.started).toEqual(['first-rollout', 'other-model']);
  expect(await world.decisions.get('second-rollout')).toBeNull();
  expect((await world.decisions.get('first-rollout'))?.record).toMatchObject({ status: 'in_progress', stage: 'rollout' });

  release.open();
  const firstDone = await world.waitDecision('first-rollout');
  const secondDone = await world.waitDecision('second-rollout');
  expect(runner.started).toEqual(['first-rollout', 'other-model', 'second-rollout']);
  expect(secondDone.received_at >= (firstDone.decided_at as string)).toBe(true);
});
