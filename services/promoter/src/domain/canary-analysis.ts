// Canary analysis (docs/architecture.md#promotion): one window of canary-versus-stable figures → pass, fail or
// hold, with a check per criterion. Pure; the figures come from a MetricsSource.
//
// - Too few canary requests is a HOLD: no other check runs, because a verdict on a handful of
//   requests is noise (it never passes and never fails; the controller replays the golden set).
// - Error rate: server-side gRPC failures over all requests. It fails above `max_error_rate`
//   unless the stable fails as often in the same window (a shared cause, not the canary's).
// - Latency: canary p95 / stable p95 over the same window; a stable without enough samples to
//   compare against is a HOLD too. Whenever the canary holds, the golden set is replayed
//   through both tracks, paced over the interval, so that neither p95 is skewed by the replay.
// - Memory: peak RSS as a fraction of the memory limit; skipped when no limit is known.
import type { CanaryPolicy } from './policy.js';
import type { TrackMetrics } from './ports.js';
import type { Track } from '@segserve/proto';

export type CheckName = 'requests' | 'error_rate' | 'latency_ratio' | 'rss_fraction';
export type CheckResult = 'pass' | 'fail' | 'hold' | 'skip';
export type Verdict = 'pass' | 'fail' | 'hold';

export interface Check {
  readonly check: CheckName;
  readonly result: CheckResult;
  /** The measured figure (rate, ratio, fraction or count); null when it could not be measured. */
  readonly value: number | null;
  readonly threshold: number;
  readonly detail: string;
}

export interface Analysis {
  readonly verdict: Verdict;
  readonly checks: readonly Check[];
  /** One sentence: the failing (or holding) checks, or why it passed. */
  readonly reason: string;
  /** Tracks that lacked samples: the golden set is replayed through them. */
  readonly needSamples: readonly Track[];
  /** Stable p95 of this window: the baseline the bake compares the promoted version with. */
  readonly stableLatencyP95Seconds: number | null;
}

const pct = (x: number): string => `${(x * 100).toFixed(x < 0.1 ? 2 : 1)}%`;
const ms = (s: number): string => `${(s * 1000).toFixed(s < 0.01 ? 2 : 0)} ms`;

function errorRate(m: TrackMetrics): number {
  return m.requests > 0 ? m.errors / m.requests : 0;
}

function requestsCheck(policy: CanaryPolicy, m: TrackMetrics, who: string): Check {
  const enough = m.requests >= policy.minRequests;
  return {
    check: 'requests',
    result: enough ? 'pass' : 'hold',
    value: m.requests,
    threshold: policy.minRequests,
    detail: `${who} served ${m.requests} requests (${enough ? 'enough' : 'fewer than'} ${policy.minRequests})`,
  };
}

function errorRateCheck(policy: CanaryPolicy, m: TrackMetrics, baseline: TrackMetrics | null): Check {
  const rate = errorRate(m);
  const stableRate = baseline ? errorRate(baseline) : 0;
  const over = rate > policy.maxErrorRate;
  const shared = over && baseline !== null && stableRate >= rate;
  return {
    check: 'error_rate',
    result: over && !shared ? 'fail' : 'pass',
    value: rate,
    threshold: policy.maxErrorRate,
    detail: `error rate ${pct(rate)} (${m.errors}/${m.requests})${baseline ? ` vs stable ${pct(stableRate)}` : ''}, limit ${pct(policy.maxErrorRate)}${shared ? ', the stable fails as often' : ''}`,
  };
}

function latencyCheck(policy: CanaryPolicy, m: TrackMetrics, baselineP95: number | null, baselineName: string): Check {
  const p95 = m.latencyP95Seconds;
  if (p95 === null) return { check: 'latency_ratio', result: 'skip', value: null, threshold: policy.maxLatencyRatio, detail: 'no latency samples (every request failed?)' };
  if (baselineP95 === null || baselineP95 <= 0) {
    return { check: 'latency_ratio', result: 'hold', value: null, threshold: policy.maxLatencyRatio, detail: `no ${baselineName} p95 to compare with` };
  }
  const ratio = p95 / baselineP95;
  return {
    check: 'latency_ratio',
    result: ratio > policy.maxLatencyRatio ? 'fail' : 'pass',
    value: ratio,
    threshold: policy.maxLatencyRatio,
    detail: `p95 ${ms(p95)} vs ${baselineName} ${ms(baselineP95)} = ×${ratio.toFixed(2)}, limit ×${policy.maxLatencyRatio}`,
  };
}

function rssCheck(policy: CanaryPolicy, m: TrackMetrics): Check {
  if (m.rssBytes === null || m.memoryLimitBytes === null || m.memoryLimitBytes <= 0) {
    return { check: 'rss_fraction', result: 'skip', value: null, threshold: policy.maxRssFraction, detail: 'no memory limit known' };
  }
  const fraction = m.rssBytes / m.memoryLimitBytes;
  return {
    check: 'rss_fraction',
    result: fraction > policy.maxRssFraction ? 'fail' : 'pass',
    value: fraction,
    threshold: policy.maxRssFraction,
    detail: `RSS ${(m.rssBytes / 2 ** 20).toFixed(0)} MiB = ${pct(fraction)} of the ${(m.memoryLimitBytes / 2 ** 20).toFixed(0)} MiB limit, limit ${pct(policy.maxRssFraction)}`,
  };
}

function verdictOf(checks: readonly Check[]): Verdict {
  if (checks.some((c) => c.result === 'fail')) return 'fail';
  if (checks.some((c) => c.result === 'hold')) return 'hold';
  return 'pass';
}

function summarize(verdict: Verdict, checks: readonly Check[]): string {
  const relevant = verdict === 'pass' ? checks.filter((c) => c.result === 'pass') : checks.filter((c) => c.result === verdict);
  return `${verdict}: ${relevant.map((c) => c.detail).join('; ')}`;
}

function analysis(checks: Check[], needSamples: Track[], stableLatencyP95Seconds: number | null): Analysis {
  const verdict = verdictOf(checks);
  return { verdict, checks, reason: summarize(verdict, checks), needSamples, stableLatencyP95Seconds };
}

/** Canary against stable over the same window. */
export function analyzeCanary(policy: CanaryPolicy, canary: TrackMetrics, stable: TrackMetrics): Analysis {
  const requests = requestsCheck(policy, canary, 'the canary');
  const stableEnough = stable.requests >= policy.minRequests;
  const stableP95 = stableEnough ? stable.latencyP95Seconds : null;
  // Replayed images go through both tracks alike: the latency comparison stays like for like.
  if (requests.result === 'hold') return analysis([requests], ['canary', 'stable'], stableP95);
  const checks = [requests, errorRateCheck(policy, canary, stable), latencyCheck(policy, canary, stableP95, 'stable'), rssCheck(policy, canary)];
  return analysis(checks, stableEnough ? [] : ['stable'], stableP95);
}

/**
 * The promoted version during the bake: absolute error rate and memory, and p95 against the
 * previous stable's p95 measured in the last canary window (`baselineP95Seconds`).
 */
export function analyzeBake(policy: CanaryPolicy, stable: TrackMetrics, baselineP95Seconds: number | null): Analysis {
  const requests = requestsCheck(policy, stable, 'the new stable');
  if (requests.result === 'hold') return analysis([requests], ['stable'], baselineP95Seconds);
  const latency = baselineP95Seconds === null ? ({ check: 'latency_ratio', result: 'skip', value: null, threshold: policy.maxLatencyRatio, detail: 'no baseline p95 (first model)' } as const) : latencyCheck(policy, stable, baselineP95Seconds, 'the previous stable');
  return analysis([requests, errorRateCheck(policy, stable, null), latency, rssCheck(policy, stable)], [], baselineP95Seconds);
}
