// End to end (issue 6, test 1): a better candidate published as CI would, verified on the
// golden set, canaried 10 → 25 → 50 % under live gRPC load through the gateway with
// Prometheus as the metrics source, promoted, baked, Succeeded; the gateway's answers switch
// from the old version to the new one and not one request fails.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { E2eStack, MODEL } from './harness.js';

let stack: E2eStack;

beforeAll(async () => {
  stack = await E2eStack.start({ prometheus: true, canary: { steps: [10, 25, 50], interval: '2s', bake: '3s' } });
}, 300_000);

afterAll(async () => {
  await stack?.[Symbol.asyncDispose]();
}, 120_000);

describe('promotion end to end', () => {
  it('verifies, canaries under load, promotes and bakes a better candidate; no request fails', async () => {
    const load = stack.startLoad();
    await stack.waitState(() => load.versions().get('2') !== undefined, 'traffic on the stable');
    const id = await stack.publish('1', 'e2e-promote-1');
    // What CI runs after publishing: exits 0 on Succeeded.
    const watch = stack.cli(['rollout', 'watch', MODEL, '--until-done', '--experiment', id, '--timeout', '5m']);
    expect(await watch.exited, watch.output()).toBe(0);
    const promotedAt = Date.now();
    expect(watch.output()).toMatch(/decision\s+promoted/);

    const s = await stack.state();
    expect(s).toMatchObject({ phase: 'Succeeded', experiment_id: id, stable: { version: '1' }, previous_stable: { version: '2' }, canary: null, outcome: 'promoted' });
    expect(await stack.phasesUntil(id, 'Succeeded')).toEqual(['Verifying', 'Canary@10', 'Canary@25', 'Canary@50', 'Promoting', 'Baking', 'Succeeded']);
    const checks = stack.events.filter((e) => e.type === 'check' && e.experiment_id === id);
    expect(checks.filter((c) => c.verdict === 'pass').length).toBeGreaterThanOrEqual(3);

    // Responses switch versions: both served during the canary, only the new one afterwards.
    await stack.waitState(() => (load.versions(promotedAt + 2_000).get('1') ?? 0) >= 20, 'traffic on the promoted version');
    expect([...load.versions(promotedAt + 2_000).keys()]).toEqual(['1']);
    await load.stop();
    expect(load.versions().get('2')).toBeGreaterThan(0);
    expect(load.failures()).toEqual([]);

    // The promoter's metrics tell the same story; Prometheus scraped them.
    expect(await stack.promoterMetric('segserve_promoter_results_total', { model: MODEL, outcome: 'promoted' })).toBe(1);
    expect(await stack.promoterMetric('segserve_rollout_phase', { model: MODEL, phase: 'Succeeded' })).toBe(1);
    expect(await stack.promoterMetric('segserve_rollout_canary_weight', { model: MODEL })).toBe(0);
    expect(await stack.promoterMetric('segserve_promoter_checks_total', { model: MODEL, check: 'error_rate', result: 'pass' })).toBeGreaterThanOrEqual(3);
    const phase = await stack.prom?.waitForSeries(`segserve_rollout_phase{model="${MODEL}",phase="Succeeded"} == 1`);
    expect(phase).toHaveLength(1);

    // `rollout status` shows it.
    const status = stack.cli(['rollout', 'status', MODEL]);
    expect(await status.exited).toBe(0);
    expect(status.output()).toMatch(/tiny-seg: Succeeded/);
    expect(status.output()).toMatch(/stable\s+1\s+ipv4:127\.0\.0\.1:\d+/);
  }, 400_000);
});
