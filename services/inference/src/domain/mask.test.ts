import { describe, expect, it } from 'vitest';
import { classMap, classMapCounted, classStats, classStatsResized, logit, nearestSource, resizeNearest, type OutputSpec } from './mask.js';

const logits: OutputSpec = { kind: 'logits', threshold: 0.5 };

describe('classMap', () => {
  it.each<[string, number[], number, OutputSpec, number[]]>([
    // Planes are channel-major: [c0 p0, c0 p1, c0 p2, c1 p0, …].
    ['2-class argmax', [1, 5, 3, 2, 4, 3], 2, logits, [1, 0, 0]],
    ['ties go to the lower class', [0, 0, 0, 0, 0, 0], 2, logits, [0, 0, 0]],
    ['3-class argmax (tie between 1 and 2 → 1)', [1, 0, 0, 2, 0, 5, 3, 1, 5], 3, logits, [2, 2, 1]],
    ['3-class probabilities', [0.2, 0.7, 0.1, 0.3, 0.2, 0.1, 0.5, 0.1, 0.8], 3, { kind: 'probabilities', threshold: 0.5 }, [2, 0, 2]],
    ['1-channel probabilities > threshold', [0.2, 0.5, 0.51], 1, { kind: 'probabilities', threshold: 0.5 }, [0, 0, 1]],
    ['sigmoid logits at 0.5 → x > 0', [-0.1, 0, 0.1], 1, { kind: 'sigmoid', threshold: 0.5 }, [0, 0, 1]],
    ['sigmoid at 0.9 → x > ln 9', [2.19, 2.2, 10], 1, { kind: 'sigmoid', threshold: 0.9 }, [0, 1, 1]],
    ['sigmoid threshold 1 → never', [100, 1e30, 0], 1, { kind: 'sigmoid', threshold: 1 }, [0, 0, 0]],
    ['sigmoid threshold 0 → always', [-100, -1e30, 0], 1, { kind: 'sigmoid', threshold: 0 }, [1, 1, 1]],
  ])('%s', (_name, values, channels, spec, expected) => {
    expect(Array.from(classMap(Float32Array.from(values), channels, values.length / channels, spec))).toEqual(expected);
  });

  it('agrees with sigmoid(x) > t on a sweep', () => {
    const xs = Float32Array.from({ length: 2001 }, (_, i) => (i - 1000) / 100);
    for (const t of [0.1, 0.3, 0.5, 0.7, 0.95]) {
      const got = classMap(xs, 1, xs.length, { kind: 'sigmoid', threshold: t });
      xs.forEach((x, i) => expect(got[i]).toBe(1 / (1 + Math.exp(-x)) > t ? 1 : 0));
    }
  });

  it('rejects an output of the wrong size', () => {
    expect(() => classMap(new Float32Array(5), 2, 3, logits)).toThrow(RangeError);
  });

  // The counts taken with the map are what classStats would count on it, for 1, 2 and n channels.
  it.each<[string, number, OutputSpec]>([
    ['1-channel sigmoid', 1, { kind: 'sigmoid', threshold: 0.5 }],
    ['1-channel probabilities', 1, { kind: 'probabilities', threshold: 0.3 }],
    ['2-class logits', 2, logits],
    ['5-class logits', 5, logits],
  ])('classMapCounted counts its own map: %s', (_name, channels, spec) => {
    const plane = 997;
    const xs = Float32Array.from({ length: channels * plane }, (_, i) => Math.sin(i * 12.9898) * (channels === 1 && spec.kind === 'probabilities' ? 0.5 : 4) + (spec.kind === 'probabilities' ? 0.5 : 0));
    const { mask, counts } = classMapCounted(xs, channels, plane, spec);
    expect(Array.from(mask)).toEqual(Array.from(classMap(xs, channels, plane, spec)));
    const names = Array.from({ length: Math.max(2, channels) }, (_, c) => `c${c}`);
    const stats = classStatsResized(mask, plane, 1, plane, 1, names, counts); // at the model's own size: from the counts
    expect(stats).toEqual(classStats(mask, names));
    // Every class occurs in this input: the counts are not trivially zero or all in one class.
    expect(stats.every((s) => s.pixels > 0)).toBe(true);
  });

  it('logit is the inverse of sigmoid', () => {
    expect(1 / (1 + Math.exp(-logit(0.8)))).toBeCloseTo(0.8, 12);
  });
});

describe('resizeNearest', () => {
  it.each<[string, number[], number, number, number, number, number[]]>([
    ['same size is returned as is', [1, 2, 3, 4], 2, 2, 2, 2, [1, 2, 3, 4]],
    ['2× up', [1, 2, 3, 4], 2, 2, 4, 4, [1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4]],
    ['2× down takes the centre-nearest', [1, 2, 3, 4, 5, 6, 7, 8], 4, 2, 2, 1, [6, 8]],
    ['3 → 5 columns (odd)', [1, 2, 3], 3, 1, 5, 1, [1, 1, 2, 3, 3]],
    ['1×1 → 3×2', [7], 1, 1, 3, 2, [7, 7, 7, 7, 7, 7]],
  ])('%s', (_name, src, sw, sh, dw, dh, expected) => {
    expect(Array.from(resizeNearest(Uint8Array.from(src), sw, sh, dw, dh))).toEqual(expected);
  });

  it('maps pixel centres and stays in range', () => {
    expect([0, 1, 2, 3, 4].map((d) => nearestSource(d, 3, 5))).toEqual([0, 0, 1, 2, 2]);
    expect(nearestSource(999, 10, 1000)).toBe(9);
  });
});

describe('classStats', () => {
  it('counts pixels and fractions per class, including absent classes', () => {
    expect(classStats(Uint8Array.from([0, 1, 1, 0, 1]), ['bg', 'ad', 'x'])).toEqual([
      { name: 'bg', pixels: 2, fraction: 0.4 },
      { name: 'ad', pixels: 3, fraction: 0.6 },
      { name: 'x', pixels: 0, fraction: 0 },
    ]);
  });
});

describe('classStatsResized', () => {
  it.each<[number, number, number, number]>([
    [4, 3, 4, 3],
    [96, 64, 1152, 768],
    [96, 64, 97, 65],
    [96, 64, 33, 201],
    [7, 5, 1, 1],
    [288, 192, 100, 60],
  ])('%i×%i → %i×%i equals counting the resized mask', (sw, sh, dw, dh) => {
    let seed = sw * 31 + dh;
    const src = Uint8Array.from({ length: sw * sh }, () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) >> 16) % 3);
    const classes = ['a', 'b', 'c'];
    expect(classStatsResized(src, sw, sh, dw, dh, classes)).toEqual(classStats(resizeNearest(src, sw, sh, dw, dh), classes));
  });
});
