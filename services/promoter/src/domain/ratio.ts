// Ratios of a cost figure (latency, memory) between a candidate and the stable measured side by
// side, with their uncertainty. Hardware-dependent figures are compared as ratios: on another
// machine, or on this one while other work runs, both sides move together, and the ratio stays.
// Its spread is what a busy machine changes, so every ratio comes with a confidence interval:
//
// - paired samples (the golden set through candidate and stable, image by image): a bootstrap
//   over the pairs — resample pair indices with replacement, take the quantile of each side and
//   their ratio, and read the interval off the resampled ratios;
// - histograms (a canary window's latency buckets, per track): a Poisson bootstrap — each
//   bucket's count redrawn from a Poisson law with that mean — then the quantile as PromQL's
//   histogram_quantile computes it.
//
// Pure: the random draws come from a PRNG with a fixed seed, so the same figures give the same
// interval every time (table-tested, and a decision can be replayed).
import { percentile } from '@segserve/runtime';

export interface RatioInterval {
  /** Candidate over stable, from all the samples. */
  readonly ratio: number;
  /** Ends of the two-sided `confidence` interval (equal to `ratio` when there is no spread to estimate). */
  readonly low: number;
  readonly high: number;
  readonly confidence: number;
  /** Pairs (paired samples) or the smaller side's observations (histograms); 0 for a single figure. */
  readonly samples: number;
}

/** Two-sided 90 %: each one-sided judgement ("worse beyond the tolerance") is at 95 %. */
export const DEFAULT_CONFIDENCE = 0.9;
const DEFAULT_RESAMPLES = 1000;
const SEED = 0x5e65e7;

export interface BootstrapOptions {
  readonly confidence?: number;
  readonly resamples?: number;
}

/** mulberry32: small, fast, good enough for resampling. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The `p` quantile (0–1) of already sorted values, interpolated like the runtime's `percentile`. */
function quantileOfSorted(sorted: readonly number[], p: number): number {
  const pos = (sorted.length - 1) * p;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return (sorted[lo] as number) + ((sorted[hi] as number) - (sorted[lo] as number)) * (pos - lo);
}

function interval(ratio: number, resampled: number[], confidence: number, samples: number): RatioInterval {
  const finite = resampled.filter((r) => Number.isFinite(r)).sort((a, b) => a - b);
  if (finite.length === 0) return { ratio, low: ratio, high: ratio, confidence, samples };
  const tail = (1 - confidence) / 2;
  return { ratio, low: Math.min(ratio, quantileOfSorted(finite, tail)), high: Math.max(ratio, quantileOfSorted(finite, 1 - tail)), confidence, samples };
}

/** A ratio of two single figures (peak RSS of each side): no spread to estimate. */
export function pointRatio(candidate: number, stable: number): RatioInterval | null {
  if (!Number.isFinite(candidate) || !Number.isFinite(stable) || stable <= 0 || candidate < 0) return null;
  const ratio = candidate / stable;
  return { ratio, low: ratio, high: ratio, confidence: DEFAULT_CONFIDENCE, samples: 0 };
}

/**
 * The ratio of the `q` percentiles (0–100) of paired samples (`candidate[i]` and `stable[i]`
 * measured on the same input, one after the other), with a bootstrap interval over the pairs.
 * Null when there are fewer than 2 pairs or the stable's percentile is not positive.
 */
export function pairedPercentileRatio(candidate: readonly number[], stable: readonly number[], q: number, options: BootstrapOptions = {}): RatioInterval | null {
  const n = Math.min(candidate.length, stable.length);
  if (n < 2) return null;
  const c = candidate.slice(0, n);
  const s = stable.slice(0, n);
  const base = percentile(s, q);
  if (!(base > 0)) return null;
  const ratio = percentile(c, q) / base;
  const confidence = options.confidence ?? DEFAULT_CONFIDENCE;
  const random = prng(SEED ^ n);
  const rc = new Array<number>(n);
  const rs = new Array<number>(n);
  const out: number[] = [];
  for (let b = 0; b < (options.resamples ?? DEFAULT_RESAMPLES); b++) {
    for (let i = 0; i < n; i++) {
      const j = Math.floor(random() * n);
      rc[i] = c[j] as number;
      rs[i] = s[j] as number;
    }
    rc.sort((x, y) => x - y);
    rs.sort((x, y) => x - y);
    const den = quantileOfSorted(rs, q / 100);
    if (den > 0) out.push(quantileOfSorted(rc, q / 100) / den);
  }
  return interval(ratio, out, confidence, n);
}

/**
 * The typical per-input ratio of paired samples: the median of `candidate[i] / stable[i]`, with a
 * bootstrap interval over the pairs — the location shift a Mann–Whitney-style canary judge
 * estimates. Each pair shares the machine's load of its moment, so the load divides out of every
 * pair's ratio; unlike a ratio of two p95s, it is not decided by a handful of scheduling spikes
 * that hit one side only. Null with fewer than 2 usable pairs.
 */
export function pairedMedianRatio(candidate: readonly number[], stable: readonly number[], options: BootstrapOptions = {}): RatioInterval | null {
  const n = Math.min(candidate.length, stable.length);
  const ratios: number[] = [];
  for (let i = 0; i < n; i++) {
    const c = candidate[i] as number;
    const s = stable[i] as number;
    if (s > 0 && c >= 0 && Number.isFinite(c) && Number.isFinite(s)) ratios.push(c / s);
  }
  if (ratios.length < 2) return null;
  const m = ratios.length;
  const ratio = percentile(ratios, 50);
  const random = prng(SEED ^ (m * 7919));
  const resampled = new Array<number>(m);
  const out: number[] = [];
  for (let b = 0; b < (options.resamples ?? DEFAULT_RESAMPLES); b++) {
    for (let i = 0; i < m; i++) resampled[i] = ratios[Math.floor(random() * m)] as number;
    resampled.sort((x, y) => x - y);
    out.push(quantileOfSorted(resampled, 0.5));
  }
  return interval(ratio, out, options.confidence ?? DEFAULT_CONFIDENCE, m);
}

/** Cumulative bucket counts by upper bound (`le`), +Inf included — a Prometheus histogram. */
export type Buckets = ReadonlyMap<number, number>;

/** histogram_quantile(q, buckets) as PromQL computes it (linear within a bucket); null without observations. */
export function histogramQuantile(q: number, buckets: Buckets): number | null {
  const sorted = [...buckets.entries()].sort((a, b) => a[0] - b[0]);
  const total = sorted.at(-1)?.[1] ?? 0;
  if (sorted.length < 2 || total <= 0) return null;
  const rank = q * total;
  let prevBound = 0;
  let prevCount = 0;
  for (const [bound, count] of sorted) {
    if (count >= rank) {
      // The +Inf bucket has no width: answer with the highest finite bound, as PromQL does.
      if (bound === Infinity) return prevBound;
      if (count === prevCount) return bound;
      return prevBound + ((bound - prevBound) * (rank - prevCount)) / (count - prevCount);
    }
    prevBound = bound;
    prevCount = count;
  }
  return prevBound;
}

/** A draw from Poisson(mean): Knuth's method for small means, a rounded normal for large ones. */
function poisson(mean: number, random: () => number): number {
  if (mean <= 0) return 0;
  if (mean > 30) {
    const z = Math.sqrt(-2 * Math.log(1 - random())) * Math.cos(2 * Math.PI * random());
    return Math.max(0, Math.round(mean + Math.sqrt(mean) * z));
  }
  const limit = Math.exp(-mean);
  let k = 0;
  let p = random();
  while (p > limit) {
    k++;
    p *= random();
  }
  return k;
}

/** Per-bucket (not cumulative) counts in bound order. */
function perBucket(buckets: Buckets): [number, number][] {
  const sorted = [...buckets.entries()].sort((a, b) => a[0] - b[0]);
  let prev = 0;
  return sorted.map(([le, cum]) => {
    const own = Math.max(0, cum - prev);
    prev = Math.max(prev, cum);
    return [le, own];
  });
}

function resampleBuckets(own: readonly [number, number][], random: () => number): Map<number, number> {
  const out = new Map<number, number>();
  let cum = 0;
  for (const [le, count] of own) {
    cum += poisson(count, random);
    out.set(le, cum);
  }
  return out;
}

/**
 * The ratio of the `q` quantiles (0–1) of two histograms (canary over stable, same window),
 * with a Poisson-bootstrap interval. Null when either side has no observations.
 */
export function histogramQuantileRatio(candidate: Buckets, stable: Buckets, q: number, options: BootstrapOptions = {}): RatioInterval | null {
  const c = histogramQuantile(q, candidate);
  const s = histogramQuantile(q, stable);
  if (c === null || s === null || !(s > 0)) return null;
  const confidence = options.confidence ?? DEFAULT_CONFIDENCE;
  const oc = perBucket(candidate);
  const os = perBucket(stable);
  const samples = Math.min(oc.reduce((t, [, n]) => t + n, 0), os.reduce((t, [, n]) => t + n, 0));
  const random = prng(SEED ^ Math.round(samples));
  const out: number[] = [];
  for (let b = 0; b < (options.resamples ?? DEFAULT_RESAMPLES); b++) {
    const rc = histogramQuantile(q, resampleBuckets(oc, random));
    const rs = histogramQuantile(q, resampleBuckets(os, random));
    if (rc !== null && rs !== null && rs > 0) out.push(rc / rs);
  }
  return interval(c / s, out, confidence, Math.round(samples));
}

/** Where an interval lies against a bound: wholly above it, wholly at or below it, or across it. */
export function sideOf(r: RatioInterval, bound: number): 'above' | 'below' | 'across' {
  if (r.low > bound) return 'above';
  if (r.high <= bound) return 'below';
  return 'across';
}

const x = (v: number): string => `×${v.toFixed(2)}`;

/** `×1.03 (90 % interval ×0.95–×1.12, 72 pairs)`, or `×1.03` for a single figure. */
export function describeRatio(r: RatioInterval, unit = 'pairs'): string {
  if (r.samples === 0 || (r.low === r.ratio && r.high === r.ratio)) return x(r.ratio);
  return `${x(r.ratio)} (${Math.round(r.confidence * 100)} % interval ${x(r.low)}–${x(r.high)}, ${r.samples} ${unit})`;
}

/** One side of a paired measurement: its figures and its per-request latencies in pair order. */
export interface PairedSide {
  readonly metrics: Readonly<Record<string, number>>;
  /** Latency of each request, index i of both sides measured on the same input (ms). */
  readonly latencyMs?: readonly number[];
}

/**
 * Candidate/stable ratios of `metrics`: `latency_ms_p<NN>` from the paired latencies (bootstrap
 * interval), any other metric as the ratio of the two figures (peak RSS: one figure per side).
 */
export function pairedRatios(metrics: readonly string[], candidate: PairedSide, stable: PairedSide, options: BootstrapOptions = {}): Record<string, RatioInterval> {
  const out: Record<string, RatioInterval> = {};
  for (const metric of metrics) {
    const q = /^latency_ms_p(\d{1,2}(?:\.\d+)?)$/.exec(metric)?.[1];
    const paired = q !== undefined && candidate.latencyMs && stable.latencyMs ? pairedPercentileRatio(candidate.latencyMs, stable.latencyMs, Number(q), options) : null;
    const r = paired ?? pointRatio(candidate.metrics[metric] ?? Number.NaN, stable.metrics[metric] ?? Number.NaN);
    if (r) out[metric] = r;
  }
  return out;
}
