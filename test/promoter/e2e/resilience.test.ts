// End to end (issue 6, tests 4–5; docs/reliability.md item 35): the promoter SIGKILLed in the middle of a
// canary and started again resumes the same rollout (no second verification, no second
// canary, the canary's processes adopted), and a NATS restart in the middle of a rollout is
// ridden out by promoter and gateway alike. The gateway never stops answering.
import { afterEach, describe, expect, it } from 'vitest';
import { E2eStack, MODEL } from './harness.js';

let stack: E2eStack | undefined;

afterEach(async () => {
  await stack?.[Symbol.asyncDispose]();
  stack = undefined;
}, 120_000);

describe('resilience end to end', () => {
  it('a promoter killed mid-canary and restarted resumes the same rollout', async () => {
    const s = (stack = await E2eStack.start({ canary: { interval: '3s', bake: '2s' } }));
    const load = s.startLoad();
    const id = await s.publish('1', 'e2e-killed-promoter');
    const canary = await s.waitState((x) => x.phase === 'Canary' && x.experiment_id === id && (x.step ?? 0) >= 1, 'the canary at its second step');
    await s.killPromoter();
    // Nobody drives the rollout now, yet traffic flows to both tracks as the state says.
    const outage = Date.now();
    await s.waitState(() => (load.versions(outage).get('1') ?? 0) >= 3 && (load.versions(outage).get('2') ?? 0) >= 10, 'traffic on both tracks without a promoter');
    await s.startPromoter();
    expect(s.promoter.lines().some((l) => l.includes('"adopted inference"') && l.includes('"track":"canary"'))).toBe(true);
    expect(s.promoter.lines().some((l) => l.includes('"resuming rollout"') && l.includes(id))).toBe(true);

    const done = await s.waitState((x) => x.phase === 'Succeeded' && x.experiment_id === id, 'the resumed rollout to succeed');
    // The canary's processes carried on and became the stable: same target, never restarted.
    expect(done.stable?.target).toBe(canary.canary?.target);
    const phases = await s.phasesUntil(id, 'Succeeded');
    expect(phases.filter((p) => p === 'Verifying')).toHaveLength(1);
    expect(phases.at(-1)).toBe('Succeeded');
    expect(phases.filter((p) => p === 'Canary@10')).toHaveLength(1);
    // The intake redelivers the unacked result to the new promoter: it gets the recorded outcome.
    const watch = s.cli(['rollout', 'watch', MODEL, '--until-done', '--experiment', id, '--timeout', '4m']);
    expect(await watch.exited, watch.output()).toBe(0);
    await load.stop();
    expect(load.failures()).toEqual([]);
  }, 600_000);

  it('too little live traffic: the checks hold and the golden set is replayed, never a verdict without samples', async () => {
    // No load at all: only the golden replay gives the analysis samples (docs/reliability.md item 30).
    const s = (stack = await E2eStack.start({ canary: { interval: '2s', bake: '2s', minRequests: 15 } }));
    const id = await s.publish('1', 'e2e-no-traffic');
    // Replayed samples decide slowly on a busy machine (checks hold until the ratio is decisive): wait for
    // the verdict as long as the test may run, not the usual three minutes.
    await s.waitState((x) => x.phase === 'Succeeded' && x.experiment_id === id, 'the rollout to succeed on replayed samples', 540_000);
    const checks = s.events.filter((e) => e.type === 'check' && e.experiment_id === id);
    expect(checks[0]).toMatchObject({ verdict: 'hold', phase: 'Canary' });
    expect(checks[0]?.reason).toMatch(/the canary served \d+ requests \(fewer than 15\)/);
    // Every verdict that was not a hold saw at least min_requests canary requests.
    for (const c of checks.filter((x) => x.verdict !== 'hold' && x.phase === 'Canary')) {
      expect(c.checks?.find((k) => k.check === 'requests')?.value).toBeGreaterThanOrEqual(15);
    }
    const replays = s.promoter.lines().filter((l) => l.includes('"golden replay done"'));
    expect(replays.some((l) => l.includes('"track":"canary'))).toBe(true); // as pairs: "canary+stable"
    expect(replays.some((l) => l.includes('"track":"stable"'))).toBe(true);
    expect(s.phases(id)).not.toContain('Failed');
    expect(await s.promoterMetric('segserve_promoter_checks_total', { model: MODEL, check: 'requests', result: 'hold' })).toBeGreaterThanOrEqual(1);
  }, 600_000);

  it('NATS restarted mid-rollout: promoter and gateway reconnect and the rollout finishes', async () => {
    const s = (stack = await E2eStack.start({ canary: { interval: '2s', bake: '3s' } }));
    const load = s.startLoad();
    const id = await s.publish('1', 'e2e-nats-restart');
    await s.waitState((x) => x.phase === 'Canary' && x.experiment_id === id, 'the canary');
    await s.nats.restart();
    const done = await s.waitState((x) => x.phase === 'Succeeded' && x.experiment_id === id, 'the rollout to finish after the NATS restart');
    expect(done).toMatchObject({ stable: { version: '1' }, previous_stable: { version: '2' } });
    expect(s.promoter.lines().some((l) => l.includes('"nats reconnect"') || l.includes('"msg":"nats reconnect"'))).toBe(true);
    const after = Date.now() + 1_000;
    await s.waitState(() => (load.versions(after).get('1') ?? 0) >= 20, 'the gateway routing to the promoted version');
    expect([...load.versions(after).keys()]).toEqual(['1']);
    await load.stop();
    expect(load.failures()).toEqual([]);
  }, 600_000);
});
