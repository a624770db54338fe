// docs/reliability.md item 35 under load: NATS restarts in the middle of a canary. The promoter and the
// gateway reconnect by themselves (neither process restarts), the rollout resumes from the state
// in KV and finishes, and the live traffic through the gateway never fails: the gateway routes
// on its last known state while NATS is away. Uses the promoter's end-to-end stack (real
// nats-server, promoter with the local driver, gateway following the rollout state, CLI).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { E2eStack } from '../promoter/e2e/harness.js';
import { parseStartupLine } from '@segserve/proto';

let stack: E2eStack;

beforeAll(async () => {
  stack = await E2eStack.start({ canary: { steps: [10, 50], interval: '2s', bake: '2s' } });
}, 300_000);

afterAll(async () => {
  await stack?.[Symbol.asyncDispose]();
}, 120_000);

describe('NATS restart mid-rollout (item 35)', () => {
  it('promoter and gateway reconnect, the canary resumes from KV and completes, no request fails', async () => {
    const load = stack.startLoad();
    await stack.waitState(() => load.versions().get('2') !== undefined, 'traffic on the stable');
    const promoterPid = stack.promoter.pid;
    const gatewayPid = stack.gateway.pid;
    const id = await stack.publish('1', 'reliability-nats-restart');
    const during = await stack.waitState((s) => s.phase === 'Canary' && s.experiment_id === id, 'the canary');

    await stack.nats.restart();

    const done = await stack.waitState((s) => s.experiment_id === id && (s.phase === 'Succeeded' || s.phase === 'Failed'), 'the end of the rollout');
    await load.stop();
    expect(done).toMatchObject({ phase: 'Succeeded', stable: { version: '1' }, canary: null });
    // The record written after the restart continues the one from before it.
    expect(done.revision).toBeGreaterThan(during.revision);
    expect(load.failures()).toEqual([]);
    expect(load.results.length).toBeGreaterThan(20);
    expect(stack.promoter.hasExited()).toBe(false);
    expect(stack.gateway.hasExited()).toBe(false);
    expect([stack.promoter.pid, stack.gateway.pid]).toEqual([promoterPid, gatewayPid]);
    expect(stack.promoter.lines().filter((l) => parseStartupLine('promoter', l)).length).toBe(1);
  });
});
