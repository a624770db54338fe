import { describe, expect, it } from 'vitest';
import { PAIRED_MIN, addBucketPairs, analyzeBake, analyzeCanary, fromBucketPairs, holdExplanation, toBucketPairs, type CheckName, type CheckResult, type PairedLatencies, type Verdict } from './canary-analysis.js';
import type { CanaryPolicy } from './policy.js';
import type { TrackMetrics } from './ports.js';

const POLICY: CanaryPolicy = {
  steps: [10, 25, 50],
  intervalMs: 30_000,
  minRequests: 50,
  maxFailedChecks: 2,
  maxErrorRate: 0.01,
  maxLatencyRatio: 1.2,
  maxRssFraction: 0.9,
  bakeMs: 60_000,
  bakeExtensions: 2,
  onNoEvidence: 'fail',
  maxHolds: 10,
};

const MiB = 2 ** 20;
const m = (over: Partial<TrackMetrics> = {}): TrackMetrics => ({ requests: 100, errors: 0, latencyP95Seconds: 0.4, rssBytes: 200 * MiB, memoryLimitBytes: 512 * MiB, ...over });

type Row = [name: string, canary: TrackMetrics, stable: TrackMetrics, verdict: Verdict, results: Partial<Record<CheckName, CheckResult>>, needSamples: string[]];

describe('analyzeCanary', () => {
  const rows: Row[] = [
    ['healthy canary', m(), m(), 'pass', { requests: 'pass', error_rate: 'pass', latency_ratio: 'pass', rss_fraction: 'pass' }, []],
    ['too few canary requests holds, even when all failed', m({ requests: 49, errors: 49 }), m(), 'hold', { requests: 'hold' }, ['canary', 'stable']],
    ['no traffic at all: replay through both', m({ requests: 0 }), m({ requests: 3 }), 'hold', { requests: 'hold' }, ['canary', 'stable']],
    ['exactly min_requests is enough', m({ requests: 50 }), m(), 'pass', { requests: 'pass' }, []],
    ['error rate above the limit fails', m({ errors: 2 }), m(), 'fail', { error_rate: 'fail' }, []],
    ['error rate at the limit passes', m({ errors: 1 }), m(), 'pass', { error_rate: 'pass' }, []],
    ['errors shared with the stable are not the canary’s', m({ errors: 5 }), m({ errors: 6 }), 'pass', { error_rate: 'pass' }, []],
    ['latency ratio above the limit fails', m({ latencyP95Seconds: 0.5 }), m({ latencyP95Seconds: 0.4 }), 'fail', { latency_ratio: 'fail' }, []],
    ['latency ratio at the limit passes', m({ latencyP95Seconds: 0.48 }), m({ latencyP95Seconds: 0.4 }), 'pass', { latency_ratio: 'pass' }, []],
    ['a stable with too few samples holds the latency check', m(), m({ requests: 10 }), 'hold', { latency_ratio: 'hold', error_rate: 'pass' }, ['stable']],
    ['errors fail even when latency cannot be compared', m({ errors: 50 }), m({ requests: 10 }), 'fail', { error_rate: 'fail', latency_ratio: 'hold' }, ['stable']],
    ['no latency samples is skipped, not failed', m({ latencyP95Seconds: null }), m(), 'pass', { latency_ratio: 'skip' }, []],
    ['RSS above the fraction of the limit fails', m({ rssBytes: 470 * MiB }), m(), 'fail', { rss_fraction: 'fail' }, []],
    ['no memory limit known skips the RSS check', m({ memoryLimitBytes: null }), m(), 'pass', { rss_fraction: 'skip' }, []],
    ['no RSS figure skips the RSS check', m({ rssBytes: null }), m(), 'pass', { rss_fraction: 'skip' }, []],
  ];
  it.each(rows)('%s', (_name, canary, stable, verdict, results, needSamples) => {
    const a = analyzeCanary(POLICY, canary, stable);
    expect(a.verdict).toBe(verdict);
    for (const [check, result] of Object.entries(results)) expect(a.checks.find((c) => c.check === check)?.result, check).toBe(result);
    expect(a.needSamples).toEqual(needSamples);
    expect(a.reason.startsWith(`${verdict}: `)).toBe(true);
  });

  it('explains a failure with the figures', () => {
    const a = analyzeCanary(POLICY, m({ errors: 12, latencyP95Seconds: 0.6 }), m());
    expect(a.reason).toBe('fail: error rate 12.0% (12/100) vs stable 0.00%, limit 1.00%; p95 600 ms vs stable 400 ms = ×1.50, limit ×1.2');
  });

  it('keeps the stable p95 of the window as the bake baseline', () => {
    expect(analyzeCanary(POLICY, m(), m({ latencyP95Seconds: 0.33 })).stableLatencyP95Seconds).toBe(0.33);
    expect(analyzeCanary(POLICY, m(), m({ requests: 1 })).stableLatencyP95Seconds).toBeNull();
  });
});

describe('analyzeBake', () => {
  const rows: [string, TrackMetrics, number | null, Verdict, Partial<Record<CheckName, CheckResult>>][] = [
    ['healthy', m(), 0.4, 'pass', { error_rate: 'pass', latency_ratio: 'pass' }],
    ['idle holds', m({ requests: 2 }), 0.4, 'hold', { requests: 'hold' }],
    ['errors fail on the absolute limit', m({ errors: 3 }), 0.4, 'fail', { error_rate: 'fail' }],
    ['slower than the previous stable fails', m({ latencyP95Seconds: 0.6 }), 0.4, 'fail', { latency_ratio: 'fail' }],
    ['no baseline (first model) skips latency', m({ latencyP95Seconds: 9 }), null, 'pass', { latency_ratio: 'skip' }],
  ];
  it.each(rows)('%s', (_name, stable, baseline, verdict, results) => {
    const a = analyzeBake(POLICY, stable, { p95Seconds: baseline, buckets: null });
    expect(a.verdict).toBe(verdict);
    for (const [check, result] of Object.entries(results)) expect(a.checks.find((c) => c.check === check)?.result, check).toBe(result);
  });
});

/** Cumulative histogram over the inference buckets from per-bucket counts. */
const BOUNDS = [0.025, 0.05, 0.1, 0.25, 0.5, 1, Infinity];
function hist(counts: number[]): Map<number, number> {
  let sum = 0;
  return new Map(BOUNDS.map((b, i) => [b, (sum += counts[i] ?? 0)]));
}
const withHist = (counts: number[], p95: number): TrackMetrics => m({ requests: counts.reduce((a, b) => a + b, 0), latencyP95Seconds: p95, latencyBuckets: hist(counts) });

describe('latency judged as a ratio with its uncertainty (histograms)', () => {
  const stableMany = withHist([0, 100, 600, 280, 20], 0.25);
  const rows: [string, TrackMetrics, TrackMetrics, CheckResult, string[]][] = [
    ['a canary a bucket slower, many requests: the whole interval above ×1.2 → fail', withHist([0, 0, 300, 500, 200], 0.4), stableMany, 'fail', []],
    ['the same distribution, many requests: the whole interval under ×1.2 → pass', withHist([0, 100, 600, 280, 20], 0.25), stableMany, 'pass', []],
    ['the same distribution, 60 requests: the interval straddles ×1.2 → hold, replay both', withHist([0, 6, 36, 15, 3], 0.25), withHist([0, 6, 36, 15, 3], 0.25), 'hold', ['canary', 'stable']],
  ];
  it.each(rows)('%s', (_name, canary, stable, result, needSamples) => {
    const a = analyzeCanary(POLICY, canary, stable);
    const latency = a.checks.find((c) => c.check === 'latency_ratio');
    expect(latency?.result).toBe(result);
    expect(latency?.low).toBeLessThanOrEqual(latency?.value ?? 0);
    expect(latency?.high).toBeGreaterThanOrEqual(latency?.value ?? 0);
    expect(latency?.detail).toMatch(/^p95 \d+ ms vs stable \d+ ms = ×[\d.]+ \(90 % interval ×[\d.]+–×[\d.]+, \d+ requests\)/);
    expect(a.needSamples).toEqual(needSamples);
    expect(a.verdict).toBe(result);
  });

  it('a straddling interval says what it waits for', () => {
    const a = analyzeCanary(POLICY, withHist([0, 6, 36, 15, 3], 0.25), withHist([0, 6, 36, 15, 3], 0.25));
    expect(a.checks.find((c) => c.check === 'latency_ratio')?.detail).toMatch(/the interval straddles the limit ×1.2, waiting for more requests to tell$/);
    expect(holdExplanation(a.checks, 'canary')).toMatch(/^waiting for a p95 ratio decisively under or over ×1.2 \(now ×1.00, interval ×[\d.]+–×[\d.]+; more requests narrow it\)$/);
  });

  it('the stable histogram of a window is kept as the bake baseline, through JSON', () => {
    const a = analyzeCanary(POLICY, withHist([0, 100, 600, 280, 20], 0.25), stableMany);
    const stored = JSON.parse(JSON.stringify(a.stableLatencyBuckets)) as [number | null, number][];
    expect(stored.at(-1)).toEqual([null, 1000]);
    expect(fromBucketPairs(stored)).toEqual(hist([0, 100, 600, 280, 20]));
    expect(toBucketPairs(null)).toBeNull();
    const bake = analyzeBake(POLICY, withHist([0, 0, 300, 500, 200], 0.4), { p95Seconds: 0.25, buckets: fromBucketPairs(stored) });
    expect(bake.checks.find((c) => c.check === 'latency_ratio')?.result).toBe('fail');
  });

  // The bake compares the new stable with the previous stable earlier: across time, where the
  // interval may never clear the limit, a straddle within the limit passes; wholly above fails.
  const FEW = [0, 6, 36, 15, 3];
  const MANY = [0, 100, 600, 280, 20];
  const bakeRows: [string, TrackMetrics, number[], CheckResult, string[]][] = [
    ['the same distribution, 60 requests: straddles, within the limit → pass', withHist(FEW, 0.25), FEW, 'pass', []],
    ['a slower distribution, 60 requests: straddles, above the limit → hold', withHist([0, 0, 30, 20, 10], 0.45), FEW, 'hold', ['stable']],
    ['a bucket slower, many requests: wholly above → fail', withHist([0, 0, 300, 500, 200], 0.4), MANY, 'fail', []],
  ];
  it.each(bakeRows)('in the bake: %s', (_name, stable, baseline, result, needSamples) => {
    const a = analyzeBake(POLICY, stable, { p95Seconds: 0.25, buckets: hist(baseline) });
    const latency = a.checks.find((c) => c.check === 'latency_ratio');
    expect(latency?.result).toBe(result);
    if (result !== 'fail') expect((latency?.low ?? 2) < 1.2 && (latency?.high ?? 0) > 1.2, latency?.detail).toBe(true);
    if (result === 'pass') expect(latency?.detail).toMatch(/, limit ×1.2: not decisive across time, and within it \(the canary's paired check judged latency\)$/);
    expect(a.verdict).toBe(result);
    expect(a.needSamples).toEqual(needSamples);
  });

  it.each([
    ['same bounds: counts added', [[0.25, 40], [0.5, 50], [null, 50]], [[0.25, 0], [0.5, 5], [null, 50]], [[0.25, 40], [0.5, 55], [null, 100]]],
    ['no older window: the newer', null, [[0.5, 10], [null, 10]], [[0.5, 10], [null, 10]]],
    ['no newer histogram: the older', [[0.5, 10], [null, 10]], null, [[0.5, 10], [null, 10]]],
    ['other bounds: the newer alone', [[0.25, 40], [null, 50]], [[0.5, 5], [null, 50]], [[0.5, 5], [null, 50]]],
    ['neither', undefined, null, null],
  ] as const)('addBucketPairs — %s', (_name, older, newer, sum) => {
    expect(addBucketPairs(older, newer)).toEqual(sum);
  });

  /**
   * Pairs on a machine whose load swings threefold from pair to pair: both sides of a pair see the
   * same load, the canary `factor` times the stable plus ±5 % of its own noise; every 10th request
   * of each side (different pairs) is delayed 4× by the scheduler — the spikes a busy machine puts
   * on one side only, which decide a ratio of two p95s.
   */
  const pairs = (n: number, factor: number, tail: (i: number) => number = () => 1): PairedLatencies => {
    const load = Array.from({ length: n }, (_, i) => 1 + (3 * ((i * 37) % 10)) / 10);
    return {
      stable: load.map((f, i) => 1000 * f * (i % 10 === 3 ? 4 : 1)),
      canary: load.map((f, i) => 1000 * f * factor * tail(i) * (1 + 0.05 * Math.sin(i * 1.7)) * (i % 10 === 8 ? 4 : 1)),
    };
  };
  const straddling = withHist([0, 6, 36, 15, 3], 0.25);
  const pairedRows: [string, PairedLatencies | undefined, CheckResult, RegExp][] = [
    ['histograms straddle, 60 pairs of equals: the per-image ratio judges → pass', pairs(60, 1), 'pass', /^replayed pairs: per-image ratio ×1\.0\d \(90 % interval ×[\d.]+–×[\d.]+, 60 pairs\); p95 \d+ ms vs stable \d+ ms = ×[\d.]+ \(90 % interval ×[\d.]+–×[\d.]+, 60 pairs\), limit ×1.2$/],
    ['60 pairs, the canary ×1.6 on each image → fail', pairs(60, 1.6), 'fail', /^replayed pairs: per-image ratio ×1\.[5-7]\d \(90 % interval ×1\.[5-7]\d–×1\.[5-7]\d, 60 pairs\); .*, limit ×1.2$/],
    ['60 pairs, a fifth of the images ×4 on the canary: typical ×1, the tail decisively slower → fail', pairs(60, 1, (i) => (i % 5 === 0 ? 4 : 1)), 'fail', /, limit ×1.2: the tail is decisively slower$/],
    [`${PAIRED_MIN - 1} pairs: too few, the histograms judge → hold`, pairs(PAIRED_MIN - 1, 1), 'hold', /^p95 250 ms vs stable 250 ms = .*requests\)/],
    ['no pairs: the histograms judge → hold', undefined, 'hold', /^p95 250 ms vs stable 250 ms = /],
  ];
  it.each(pairedRows)('%s', (_name, paired, result, detail) => {
    const a = analyzeCanary(POLICY, straddling, straddling, paired);
    const latency = a.checks.find((c) => c.check === 'latency_ratio');
    expect(latency?.result).toBe(result);
    expect(latency?.detail).toMatch(detail);
    expect(a.verdict).toBe(result);
  });

  it('a hold on the pairs says what it waits for', () => {
    // 20 pairs whose ratios spread evenly over ×0.9–×1.5: the per-image interval straddles ×1.2.
    const stable = Array.from({ length: 20 }, (_, i) => 1000 * (1 + (2 * ((i * 3) % 20)) / 19));
    const few: PairedLatencies = { stable, canary: stable.map((x, i) => x * (0.9 + (0.6 * ((i * 7) % 20)) / 19)) };
    const a = analyzeCanary(POLICY, straddling, straddling, few);
    expect(a.checks.find((c) => c.check === 'latency_ratio')?.result).toBe('hold');
    expect(holdExplanation(a.checks, 'canary')).toMatch(/^waiting for a per-image latency ratio of the replayed pairs decisively under or over ×1.2 \(now ×[\d.]+, interval ×[\d.]+–×[\d.]+; more pairs narrow it\)$/);
  });

  it('explains a hold for requests', () => {
    const a = analyzeCanary(POLICY, m({ requests: 12 }), m());
    expect(holdExplanation(a.checks, 'canary')).toBe('waiting for 50 requests to the canary in the window (12 so far; the golden set is replayed through it)');
    expect(holdExplanation(analyzeCanary(POLICY, m(), m()).checks, 'canary')).toBe('');
  });
});
