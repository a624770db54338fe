// Canary analysis (docs/architecture.md#promotion): one window of canary-versus-stable figures → pass, fail or
// hold, with a check per criterion. Pure; the figures come from a MetricsSource.
//
// - Too few canary requests is a HOLD: no other check runs, because a verdict on a handful of
//   requests is noise (it never passes and never fails; the controller replays the golden set).
// - Error rate: server-side gRPC failures over all requests. It fails above `max_error_rate`
//   unless the stable fails as often in the same window (a shared cause, not the canary's).
// - Latency: canary p95 / stable p95 over the same window, with its uncertainty: from the two
//   latency histograms, a Poisson-bootstrap interval of the ratio (domain/ratio.ts). It fails
//   when the whole interval is above `max_latency_ratio`, passes when the whole interval is at
//   or under it, and HOLDS when the interval straddles it (one window's p95 on a busy machine is
//   not evidence either way): the window keeps growing until the ratio is decisive. Without
//   histograms, the two p95s alone decide. A stable without enough samples to compare against
//   is a HOLD too. Whenever a check holds for samples, the golden set is replayed through the
//   tracks, paced over the interval, so that neither p95 is skewed by the replay.
//   When the golden set was replayed through both tracks as pairs (each image through the canary
//   and the stable back to back) and the window has at least PAIRED_MIN pairs, those pairs judge
//   the latency instead: the same images at the same moment on both sides, so the load of the
//   machine divides out of each pair's ratio. The typical per-image ratio (the median of the
//   pairs' ratios, bootstrap interval) decides like the histogram ratio does — fail wholly above
//   `max_latency_ratio`, pass wholly under, hold across — and the pairs' p95 ratio guards the
//   tail: its interval wholly above the limit fails too. (A ratio of two p95s is decided by the
//   few requests a busy scheduler happened to delay on one side: 250 pairs of v3 against v2 gave
//   an interval still straddling the limit, docs/benchmarks.md.)
// - Memory: peak RSS as a fraction of the memory limit; skipped when no limit is known.
import type { CanaryPolicy } from './policy.js';
import type { TrackMetrics } from './ports.js';
import { describeRatio, histogramQuantileRatio, pairedMedianRatio, pairedPercentileRatio, sideOf, type Buckets, type RatioInterval } from './ratio.js';
import type { CheckVerdict, Track } from '@segserve/proto';
import { percentile } from '@segserve/runtime';

export type CheckName = 'requests' | 'error_rate' | 'latency_ratio' | 'rss_fraction';
export type CheckResult = 'pass' | 'fail' | 'hold' | 'skip';
/** A window's verdict; proto/src/reason-codes.ts says what each means. */
export type Verdict = CheckVerdict;

export interface Check {
  readonly check: CheckName;
  readonly result: CheckResult;
  /** The measured figure (rate, ratio, fraction or count); null when it could not be measured. */
  readonly value: number | null;
  readonly threshold: number;
  /** A ratio's confidence interval, when the check judged one. */
  readonly low?: number;
  readonly high?: number;
  readonly detail: string;
}

/** A latency histogram as JSON can carry it: cumulative counts by `le`, null for +Inf. */
export type BucketPairs = readonly (readonly [number | null, number])[];

export function toBucketPairs(b: Buckets | null | undefined): BucketPairs | null {
  if (!b || b.size === 0) return null;
  return [...b.entries()].sort((x, y) => x[0] - y[0]).map(([le, n]) => [Number.isFinite(le) ? le : null, n] as const);
}

export function fromBucketPairs(p: BucketPairs | null | undefined): Buckets | null {
  return p && p.length > 0 ? new Map(p.map(([le, n]) => [le ?? Infinity, n])) : null;
}

/**
 * Two windows' histograms as one (counts added bucket by bucket). Histograms with other bounds
 * cannot be added: the newer one alone is kept; without a newer one, the older.
 */
export function addBucketPairs(older: BucketPairs | null | undefined, newer: BucketPairs | null | undefined): BucketPairs | null {
  if (!older || !newer) return newer ?? older ?? null;
  if (older.length !== newer.length || older.some(([le], i) => le !== newer[i]?.[0])) return newer;
  return newer.map(([le, n], i) => [le, n + (older[i]?.[1] ?? 0)] as const);
}

/** What a latency comparison is made against: a p95, and when known the histogram behind it. */
export interface LatencyBaseline {
  readonly p95Seconds: number | null;
  readonly buckets: Buckets | null;
}

/** Latencies (ms) of the golden images replayed as pairs in the window: `canary[i]` and `stable[i]` are one image. */
export interface PairedLatencies {
  readonly canary: readonly number[];
  readonly stable: readonly number[];
}

/** Fewer pairs than this leave the latency check to the histograms: a p95 of a handful is its maximum. */
export const PAIRED_MIN = 20;

export interface Analysis {
  readonly verdict: Verdict;
  readonly checks: readonly Check[];
  /** One sentence: the failing (or holding) checks, or why it passed. */
  readonly reason: string;
  /** Tracks that lacked samples: the golden set is replayed through them. */
  readonly needSamples: readonly Track[];
  /** Stable p95 of this window: the baseline the bake compares the promoted version with. */
  readonly stableLatencyP95Seconds: number | null;
  /** The stable's latency histogram of this window (the bake's baseline, with its spread). */
  readonly stableLatencyBuckets: BucketPairs | null;
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

/**
 * How a latency ratio whose interval straddles the limit is judged. `wait`: hold for more
 * samples (the canary, judged beside the stable under the same load). `guard`: the bake, which
 * compares the new stable now with the previous stable earlier — across time, on a machine whose
 * load changes, the interval may never clear the limit however many requests come, and the
 * canary's paired check already judged the candidate's latency; so a straddling interval passes
 * when its ratio is within the limit, and a ratio above the limit whose interval reaches under it
 * still holds. Either way an interval wholly above the limit fails.
 */
type Straddle = 'wait' | 'guard';

function latencyCheck(policy: CanaryPolicy, m: TrackMetrics, baseline: LatencyBaseline, baselineName: string, straddle: Straddle = 'wait'): Check {
  const p95 = m.latencyP95Seconds;
  const max = policy.maxLatencyRatio;
  if (p95 === null) return { check: 'latency_ratio', result: 'skip', value: null, threshold: max, detail: 'no latency samples (every request failed?)' };
  if (baseline.p95Seconds === null || baseline.p95Seconds <= 0) {
    return { check: 'latency_ratio', result: 'hold', value: null, threshold: max, detail: `no ${baselineName} p95 to compare with` };
  }
  const figures = `p95 ${ms(p95)} vs ${baselineName} ${ms(baseline.p95Seconds)}`;
  const r = m.latencyBuckets && baseline.buckets ? histogramQuantileRatio(m.latencyBuckets, baseline.buckets, 0.95) : null;
  if (r) return ratioCheck(r, max, `${figures} = ${describeRatio(r, 'requests')}`, 'requests', straddle);
  const ratio = p95 / baseline.p95Seconds;
  return {
    check: 'latency_ratio',
    result: ratio > max ? 'fail' : 'pass',
    value: ratio,
    threshold: max,
    detail: `${figures} = ×${ratio.toFixed(2)}, limit ×${max}`,
  };
}

function ratioCheck(r: RatioInterval, max: number, figures: string, unit: string, straddle: Straddle = 'wait'): Check {
  const side = sideOf(r, max);
  const guarded = side === 'across' && straddle === 'guard' && r.ratio <= max;
  const result = side === 'above' ? 'fail' : side === 'below' || guarded ? 'pass' : 'hold';
  const why = guarded
    ? `, limit ×${max}: not decisive across time, and within it (the canary's paired check judged latency)`
    : side === 'across'
      ? `: the interval straddles the limit ×${max}, waiting for more ${unit} to tell`
      : `, limit ×${max}`;
  return { check: 'latency_ratio', result, value: r.ratio, low: r.low, high: r.high, threshold: max, detail: `${figures}${why}` };
}

/** The latency check from replayed pairs; null when there are too few to judge. */
function pairedLatencyCheck(policy: CanaryPolicy, paired: PairedLatencies | undefined): Check | null {
  if (!paired || Math.min(paired.canary.length, paired.stable.length) < PAIRED_MIN) return null;
  const typical = pairedMedianRatio(paired.canary, paired.stable);
  const tail = pairedPercentileRatio(paired.canary, paired.stable, 95);
  if (!typical || !tail) return null;
  const max = policy.maxLatencyRatio;
  const p95 = (xs: readonly number[]): string => `${Math.round(percentile(xs, 95))} ms`;
  const figures = `replayed pairs: per-image ratio ${describeRatio(typical, 'pairs')}; p95 ${p95(paired.canary)} vs stable ${p95(paired.stable)} = ${describeRatio(tail, 'pairs')}`;
  if (sideOf(tail, max) === 'above' && sideOf(typical, max) !== 'above') {
    return { check: 'latency_ratio', result: 'fail', value: tail.ratio, low: tail.low, high: tail.high, threshold: max, detail: `${figures}, limit ×${max}: the tail is decisively slower` };
  }
  return ratioCheck(typical, max, figures, 'pairs');
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

function analysis(checks: Check[], needSamples: Track[], stable: LatencyBaseline): Analysis {
  const verdict = verdictOf(checks);
  return { verdict, checks, reason: summarize(verdict, checks), needSamples, stableLatencyP95Seconds: stable.p95Seconds, stableLatencyBuckets: toBucketPairs(stable.buckets) };
}

/** Canary against stable over the same window; `paired`: the golden images replayed as pairs in it. */
export function analyzeCanary(policy: CanaryPolicy, canary: TrackMetrics, stable: TrackMetrics, paired?: PairedLatencies): Analysis {
  const requests = requestsCheck(policy, canary, 'the canary');
  const stableEnough = stable.requests >= policy.minRequests;
  const baseline: LatencyBaseline = stableEnough ? { p95Seconds: stable.latencyP95Seconds, buckets: stable.latencyBuckets ?? null } : { p95Seconds: null, buckets: null };
  // Replayed images go through both tracks alike: the latency comparison stays like for like.
  if (requests.result === 'hold') return analysis([requests], ['canary', 'stable'], baseline);
  const latency = pairedLatencyCheck(policy, paired) ?? latencyCheck(policy, canary, baseline, 'stable');
  const checks = [requests, errorRateCheck(policy, canary, stable), latency, rssCheck(policy, canary)];
  const needSamples: Track[] = !stableEnough ? ['stable'] : latency.result === 'hold' ? ['canary', 'stable'] : [];
  return analysis(checks, needSamples, baseline);
}

/**
 * The promoted version during the bake: absolute error rate and memory, and p95 against the
 * previous stable's in the passing canary windows (`baseline`, with its histogram when known),
 * judged as a guard (see Straddle).
 */
export function analyzeBake(policy: CanaryPolicy, stable: TrackMetrics, baseline: LatencyBaseline): Analysis {
  const requests = requestsCheck(policy, stable, 'the new stable');
  if (requests.result === 'hold') return analysis([requests], ['stable'], baseline);
  const latency = baseline.p95Seconds === null ? ({ check: 'latency_ratio', result: 'skip', value: null, threshold: policy.maxLatencyRatio, detail: 'no baseline p95 (first model)' } as const) : latencyCheck(policy, stable, baseline, 'the previous stable', 'guard');
  return analysis([requests, errorRateCheck(policy, stable, null), latency, rssCheck(policy, stable)], latency.result === 'hold' ? ['stable'] : [], baseline);
}

/**
 * What a held check waits for, in words (for `rollout watch`): the checks that held, each as
 * the figure it needs. Empty when nothing held.
 */
export function holdExplanation(checks: readonly Check[], track: 'canary' | 'new stable'): string {
  const parts = checks
    .filter((c) => c.result === 'hold')
    .map((c) => {
      if (c.check === 'requests') return `${c.threshold} requests to the ${track} in the window (${c.value ?? 0} so far; the golden set is replayed through it)`;
      if (c.check === 'latency_ratio' && c.value !== null && c.low !== undefined && c.high !== undefined && c.detail.startsWith('replayed pairs')) {
        return `a per-image latency ratio of the replayed pairs decisively under or over ×${c.threshold} (now ×${c.value.toFixed(2)}, interval ×${c.low.toFixed(2)}–×${c.high.toFixed(2)}; more pairs narrow it)`;
      }
      if (c.check === 'latency_ratio' && c.value !== null && c.low !== undefined && c.high !== undefined) {
        return `a p95 ratio decisively under or over ×${c.threshold} (now ×${c.value.toFixed(2)}, interval ×${c.low.toFixed(2)}–×${c.high.toFixed(2)}; more requests narrow it)`;
      }
      return c.detail;
    });
  return parts.length > 0 ? `waiting for ${parts.join(' and ')}` : '';
}
