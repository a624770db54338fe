import { describe, expect, it } from 'vitest';
import { IGNORE_INDEX, accumulate, emptyConfusion, percentile, scores } from './score.js';

const u8 = (v: number[]): Uint8Array => Uint8Array.from(v);

describe('scores', () => {
  it.each<[string, number[], number[], (number | null)[], number, number]>([
    ['perfect', [0, 1, 1, 0], [0, 1, 1, 0], [1, 1], 1, 1],
    ['all wrong', [1, 0], [0, 1], [0, 0], 0, 0],
    // truth 0 0 1 1, pred 0 1 1 1: class0 IoU 1/2, class1 IoU 2/3.
    ['half and two thirds', [0, 1, 1, 1], [0, 0, 1, 1], [0.5, 2 / 3], (0.5 + 2 / 3) / 2, 0.75],
    ['absent class is excluded from the mean', [0, 0], [0, 0], [1, null], 1, 1],
    ['ignored truth pixels do not count', [1, 1, 0], [IGNORE_INDEX, 1, 0], [1, 1], 1, 1],
  ])('%s', (_name, pred, truth, iou, miou, acc) => {
    const c = emptyConfusion(2);
    expect(accumulate(c, u8(pred), u8(truth))).toBe(0);
    const s = scores(c);
    expect(s.iou.map((v) => (v === null ? null : Number(v.toFixed(12))))).toEqual(iou.map((v) => (v === null ? null : Number(v.toFixed(12)))));
    expect(s.miou).toBeCloseTo(miou, 12);
    expect(s.pixelAccuracy).toBeCloseTo(acc, 12);
  });

  it('accumulates over images by pixels (dataset-level IoU)', () => {
    const c = emptyConfusion(2);
    accumulate(c, u8([1]), u8([1]));
    accumulate(c, u8([0, 0, 0]), u8([1, 1, 1]));
    expect(scores(c).iou[1]).toBeCloseTo(0.25, 12);
    expect(scores(c).pixels).toBe(4);
  });

  it('reports truth values that are not classes', () => {
    const c = emptyConfusion(2);
    expect(accumulate(c, u8([0, 0, 0]), u8([0, 7, 2]))).toBe(2);
    expect(scores(c).pixels).toBe(1);
  });

  it('counts predicted indices beyond the classes as invalid, not as the next class row', () => {
    const c = emptyConfusion(2);
    expect(accumulate(c, u8([0, 2, 1]), u8([0, 0, 1]))).toBe(1);
    expect(Array.from(c.counts)).toEqual([1, 0, 0, 1]);
  });

  it('has no mIoU (NaN, never 0) when nothing was scored', () => {
    expect(scores(emptyConfusion(2)).miou).toBeNaN();
  });

  it('rejects size mismatches', () => {
    expect(() => accumulate(emptyConfusion(2), u8([0]), u8([0, 1]))).toThrow(RangeError);
  });
});

describe('percentile', () => {
  it.each<[number[], number, number]>([
    [[1, 2, 3, 4, 5], 50, 3],
    [[1, 2, 3, 4], 50, 2.5],
    [[10, 20], 95, 19.5],
    [[5], 95, 5],
    [[3, 1, 2], 0, 1],
    [[3, 1, 2], 100, 3],
  ])('%j p%i = %f', (values, q, expected) => {
    expect(percentile(values, q)).toBeCloseTo(expected, 12);
  });

  it('is NaN for no values', () => {
    expect(percentile([], 50)).toBeNaN();
  });
});
