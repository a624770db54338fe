import { describe, expect, it } from 'vitest';
import { describeRatio, histogramQuantile, pairedMedianRatio, pairedRatios, histogramQuantileRatio, pairedPercentileRatio, pointRatio, sideOf, type RatioInterval } from './ratio.js';

/** Deterministic pseudo-random "measurements": an image's cost times the machine's load at that moment. */
function paired(n: number, candidateCost: number, spread = 0.6, seed = 7): { c: number[]; s: number[] } {
  let state = seed;
  const random = (): number => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 4294967296;
  };
  const c: number[] = [];
  const s: number[] = [];
  for (let i = 0; i < n; i++) {
    const image = 30 + 40 * random();
    // A busy machine: both sides of a pair see nearly the same load, which varies a lot.
    const load = 1 + spread * random() + (random() < 0.08 ? 2 * random() : 0);
    c.push(image * candidateCost * load * (1 + 0.1 * (random() - 0.5)));
    s.push(image * load * (1 + 0.1 * (random() - 0.5)));
  }
  return { c, s };
}

describe('pairedPercentileRatio', () => {
  it('an exact multiple gives that ratio with no spread', () => {
    const s = Array.from({ length: 50 }, (_, i) => 10 + i);
    const r = pairedPercentileRatio(s.map((v) => v * 2), s, 95);
    expect(r).toMatchObject({ ratio: 2, low: 2, high: 2, samples: 50 });
  });

  it.each([
    ['same cost', 1, 1],
    ['candidate 30 % slower', 1.3, 1.3],
    ['candidate twice as fast', 0.5, 0.5],
  ])('%s on a busy machine: the interval holds the true ratio and is narrow with 72 pairs', (_name, cost, truth) => {
    const { c, s } = paired(72, cost);
    const r = pairedPercentileRatio(c, s, 95) as RatioInterval;
    expect(r.low).toBeLessThanOrEqual(truth * 1.02);
    expect(r.high).toBeGreaterThanOrEqual(truth * 0.98);
    expect(r.high / r.low).toBeLessThan(1.35);
    expect(r.samples).toBe(72);
  });

  it('is the same on another machine: both sides scaled by one factor give the same ratio and interval', () => {
    const { c, s } = paired(72, 0.9);
    const here = pairedPercentileRatio(c, s, 95) as RatioInterval;
    for (const factor of [0.5, 2]) {
      const there = pairedPercentileRatio(c.map((v) => v * factor), s.map((v) => v * factor), 95) as RatioInterval;
      expect(there.ratio).toBeCloseTo(here.ratio, 9);
      expect(there.low).toBeCloseTo(here.low, 9);
      expect(there.high).toBeCloseTo(here.high, 9);
    }
  });

  it('more pairs, narrower interval; deterministic for the same figures', () => {
    const small = paired(24, 1);
    const large = paired(240, 1);
    const a = pairedPercentileRatio(small.c, small.s, 95) as RatioInterval;
    const b = pairedPercentileRatio(large.c, large.s, 95) as RatioInterval;
    expect(b.high - b.low).toBeLessThan(a.high - a.low);
    expect(pairedPercentileRatio(small.c, small.s, 95)).toEqual(a);
  });

  it('the interval always contains the point estimate', () => {
    for (const cost of [0.7, 1, 1.4]) {
      const { c, s } = paired(30, cost, 2);
      const r = pairedPercentileRatio(c, s, 95) as RatioInterval;
      expect(r.low).toBeLessThanOrEqual(r.ratio);
      expect(r.high).toBeGreaterThanOrEqual(r.ratio);
    }
  });

  it.each([
    ['one pair', [1], [1]],
    ['no pairs', [], []],
    ['a stable of zeros', [1, 2, 3], [0, 0, 0]],
  ])('%s → null', (_name, c, s) => {
    expect(pairedPercentileRatio(c, s, 95)).toBeNull();
  });

  it('uses only the pairs both sides have', () => {
    expect(pairedPercentileRatio([2, 4, 6, 1000], [1, 2, 3], 50)).toMatchObject({ ratio: 2, samples: 3 });
  });
});

const cumulative = (perBucket: Record<number, number>): Map<number, number> => {
  let sum = 0;
  return new Map(
    Object.entries(perBucket)
      .map(([le, n]) => [Number(le), n] as const)
      .sort((a, b) => a[0] - b[0])
      .map(([le, n]) => {
        sum += n;
        return [le, sum];
      }),
  );
};
const BOUNDS = [0.025, 0.05, 0.1, 0.25, 0.5, 1, Infinity];
const hist = (counts: number[]): Map<number, number> => cumulative(Object.fromEntries(BOUNDS.map((b, i) => [b, counts[i] ?? 0])));

describe('pairedMedianRatio (the typical per-image ratio)', () => {
  /** Like `paired`, plus scheduling spikes that delay one side of a pair only (10 % of requests each). */
  function spiky(n: number, candidateCost: number): { c: number[]; s: number[] } {
    const { c, s } = paired(n, candidateCost);
    return { c: c.map((v, i) => (i % 10 === 4 ? v * 4 : v)), s: s.map((v, i) => (i % 10 === 7 ? v * 4 : v)) };
  }

  it.each([
    [1, 0.9, 1.1],
    [0.9, 0.8, 1.0],
    [1.6, 1.45, 1.75],
  ])('one-sided spikes: the candidate ×%d on each image is found within a narrow interval where the p95 ratio stays wide', (cost, lo, hi) => {
    const { c, s } = spiky(250, cost);
    const typical = pairedMedianRatio(c, s) as RatioInterval;
    expect(typical.ratio).toBeGreaterThan(lo);
    expect(typical.ratio).toBeLessThan(hi);
    expect(typical.high - typical.low).toBeLessThan(0.1 * cost);
    const p95 = pairedPercentileRatio(c, s, 95) as RatioInterval;
    expect(p95.high - p95.low).toBeGreaterThan(2 * (typical.high - typical.low));
  });

  it('an exact multiple has no spread; too few usable pairs → null; unusable pairs are left out', () => {
    expect(pairedMedianRatio([20, 40, 60], [10, 20, 30])).toMatchObject({ ratio: 2, low: 2, high: 2, samples: 3 });
    expect(pairedMedianRatio([5], [5])).toBeNull();
    expect(pairedMedianRatio([5, 6, 7], [0, 6, 7])).toMatchObject({ ratio: 1, samples: 2 });
  });
});

describe('histogramQuantileRatio (canary windows)', () => {
  it('histogramQuantile interpolates like PromQL', () => {
    expect(histogramQuantile(0.5, hist([0, 10, 10]))).toBeCloseTo(0.05, 9);
    expect(histogramQuantile(0.95, hist([0, 0, 0, 0, 0, 0, 5]))).toBe(1);
    expect(histogramQuantile(0.95, hist([]))).toBeNull();
  });

  it('the same distribution: the interval is across 1, narrower with more requests', () => {
    const few = histogramQuantileRatio(hist([0, 5, 30, 12, 3]), hist([0, 5, 30, 12, 3]), 0.95) as RatioInterval;
    const many = histogramQuantileRatio(hist([0, 100, 600, 240, 60]), hist([0, 100, 600, 240, 60]), 0.95) as RatioInterval;
    expect(few.ratio).toBe(1);
    expect(sideOf(few, 1)).toBe('across');
    expect(many.high - many.low).toBeLessThan(few.high - few.low);
    expect(many.samples).toBe(1000);
  });

  it('a canary whose tail sits a bucket higher: the whole interval is above ×1.2 with enough requests', () => {
    const r = histogramQuantileRatio(hist([0, 0, 300, 500, 200]), hist([0, 100, 600, 280, 20]), 0.95) as RatioInterval;
    expect(r.ratio).toBeGreaterThan(1.2);
    expect(sideOf(r, 1.2)).toBe('above');
  });

  it('no observations on a side → null', () => {
    expect(histogramQuantileRatio(hist([]), hist([1, 2]), 0.95)).toBeNull();
  });
});

describe('sideOf, pointRatio, describeRatio', () => {
  const r = (ratio: number, low: number, high: number, samples = 72): RatioInterval => ({ ratio, low, high, confidence: 0.9, samples });
  it.each([
    [r(1.3, 1.26, 1.35), 1.25, 'above'],
    [r(1.3, 1.2, 1.35), 1.25, 'across'],
    [r(1.1, 1.0, 1.25), 1.25, 'below'],
  ] as const)('%o against %d → %s', (interval, bound, side) => {
    expect(sideOf(interval, bound)).toBe(side);
  });

  it('pointRatio has no spread; refuses what cannot be divided', () => {
    expect(pointRatio(300, 200)).toMatchObject({ ratio: 1.5, low: 1.5, high: 1.5, samples: 0 });
    expect(pointRatio(1, 0)).toBeNull();
    expect(pointRatio(Number.NaN, 1)).toBeNull();
  });

  it('describes a ratio with or without its interval', () => {
    expect(describeRatio(r(1.034, 0.951, 1.118))).toBe('×1.03 (90 % interval ×0.95–×1.12, 72 pairs)');
    expect(describeRatio(pointRatio(300, 200) as RatioInterval)).toBe('×1.50');
  });
});

describe('pairedRatios', () => {
  it('latency percentiles from the pairs, other metrics from the two figures', () => {
    const { c, s } = paired(72, 1.3);
    const r = pairedRatios(['latency_ms_p95', 'latency_ms_p50', 'peak_rss_mb', 'missing'], { metrics: { peak_rss_mb: 300 }, latencyMs: c }, { metrics: { peak_rss_mb: 200 }, latencyMs: s });
    expect(Object.keys(r)).toEqual(['latency_ms_p95', 'latency_ms_p50', 'peak_rss_mb']);
    expect(r['latency_ms_p95']?.samples).toBe(72);
    expect(r['latency_ms_p50']?.ratio).toBeGreaterThan(1.2);
    expect(r['peak_rss_mb']).toMatchObject({ ratio: 1.5, samples: 0 });
  });

  it('without latencies (a stable measured alone), the figures give a point ratio', () => {
    expect(pairedRatios(['latency_ms_p95'], { metrics: { latency_ms_p95: 150 } }, { metrics: { latency_ms_p95: 100 } })).toEqual({ latency_ms_p95: { ratio: 1.5, low: 1.5, high: 1.5, confidence: 0.9, samples: 0 } });
  });
});
