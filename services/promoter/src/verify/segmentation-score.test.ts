import { describe, expect, it } from 'vitest';
import { ConfusionMatrix, IGNORE_INDEX, percentile } from './segmentation-score.js';

const u8 = (...v: number[]) => new Uint8Array(v);

describe('ConfusionMatrix (dataset-level mIoU, as experiments/metrics.py)', () => {
  it.each([
    { name: 'perfect', images: [[u8(0, 1, 1, 0), u8(0, 1, 1, 0)]], iou: [1, 1], miou: 1 },
    { name: 'all wrong', images: [[u8(1, 0), u8(0, 1)]], iou: [0, 0], miou: 0 },
    // truth 0 0 1 1, pred 0 1 1 1: class 0 TP1 FN1 → 1/2; class 1 TP2 FP1 → 2/3
    { name: 'half and two thirds', images: [[u8(0, 1, 1, 1), u8(0, 0, 1, 1)]], iou: [0.5, 2 / 3], miou: (0.5 + 2 / 3) / 2 },
    // Summed over images, not averaged per image: the big image weighs more.
    { name: 'pixels weigh, not images', images: [[u8(1), u8(1)], [u8(0, 0, 0), u8(1, 1, 1)]], iou: [0, 0.25], miou: 0.125 },
    { name: 'a class absent from truth and prediction is left out', images: [[u8(0, 0), u8(0, 0)]], iou: [1, null], miou: 1 },
    { name: "don't-care pixels are skipped", images: [[u8(1, 0), u8(IGNORE_INDEX, 0)]], iou: [1, null], miou: 1 },
  ])('$name', ({ images, iou, miou }) => {
    const m = new ConfusionMatrix(2);
    for (const [pred, truth] of images) m.add(pred as Uint8Array, truth as Uint8Array);
    expect(m.iou().map((v) => (v === null ? null : Number(v.toFixed(6))))).toEqual(iou.map((v) => (v === null ? null : Number(v.toFixed(6)))));
    expect(m.miou()).toBeCloseTo(miou, 9);
  });

  it('counts truth values that are no class and refuses size mismatches', () => {
    const m = new ConfusionMatrix(2);
    expect(m.add(u8(0, 1, 0), u8(0, 7, 0))).toBe(1);
    expect(() => m.add(u8(0), u8(0, 0))).toThrow(RangeError);
    expect(new ConfusionMatrix(2).miou()).toBeNaN();
  });
});

describe('percentile (numpy linear)', () => {
  it.each([
    [[1, 2, 3, 4], 50, 2.5],
    [[10, 20, 30, 40, 50], 95, 48],
    [[7], 95, 7],
    [[3, 1, 2], 0, 1],
    [[3, 1, 2], 100, 3],
  ])('%j p%d = %d', (values, q, expected) => {
    expect(percentile(values, q)).toBeCloseTo(expected, 9);
  });
  it('is NaN without values', () => {
    expect(percentile([], 95)).toBeNaN();
  });
});
