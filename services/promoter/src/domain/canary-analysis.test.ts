import { describe, expect, it } from 'vitest';
import { analyzeBake, analyzeCanary, type CheckName, type CheckResult, type Verdict } from './canary-analysis.js';
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
    const a = analyzeBake(POLICY, stable, baseline);
    expect(a.verdict).toBe(verdict);
    for (const [check, result] of Object.entries(results)) expect(a.checks.find((c) => c.check === check)?.result, check).toBe(result);
  });
});
