import { describe, expect, it } from 'vitest';
import { channelTables, toNchw, type Normalization } from './tensor.js';

const imagenet: Normalization = { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225], scale: 1 / 255, channelOrder: 'RGB' };

describe('toNchw', () => {
  // Two pixels: (10, 20, 30) and (200, 100, 0).
  const rgb = Uint8Array.from([10, 20, 30, 200, 100, 0]);

  it.each<[string, Normalization, number[]]>([
    ['identity RGB', { mean: [0, 0, 0], std: [1, 1, 1], scale: 1, channelOrder: 'RGB' }, [10, 200, 20, 100, 30, 0]],
    ['identity BGR puts blue first', { mean: [0, 0, 0], std: [1, 1, 1], scale: 1, channelOrder: 'BGR' }, [30, 0, 20, 100, 10, 200]],
    ['scale, mean, std per tensor channel', { mean: [1, 2, 3], std: [2, 4, 8], scale: 0.5, channelOrder: 'RGB' }, [2, 49.5, 2, 12, 1.5, -0.375]],
    ['BGR uses mean/std of the tensor channel', { mean: [1, 2, 3], std: [2, 4, 8], scale: 0.5, channelOrder: 'BGR' }, [7, -0.5, 2, 12, 0.25, 12.125]],
  ])('%s', (_name, norm, expected) => {
    const out = toNchw(rgb, 2, 1, channelTables(norm), norm.channelOrder);
    expect(Array.from(out)).toEqual(expected.map((v) => Math.fround(v)));
  });

  it('matches the direct formula for ImageNet normalisation on every byte value', () => {
    const tables = channelTables(imagenet);
    for (let c = 0; c < 3; c++) {
      for (let v = 0; v < 256; v++) {
        expect(tables[c as 0 | 1 | 2][v]).toBe(Math.fround((v / 255 - imagenet.mean[c]!) / imagenet.std[c]!));
      }
    }
  });

  // The word-wise path takes four pixels at a time; the rest, and unaligned input, go byte-wise.
  it.each([
    ['RGB, aligned, a tail of 3', 'RGB', 7, 0],
    ['BGR, aligned, no tail', 'BGR', 8, 0],
    ['RGB, unaligned', 'RGB', 9, 1],
    ['BGR, unaligned, one pixel', 'BGR', 1, 3],
  ] as const)('equals the per-pixel formula: %s', (_name, order, pixels, offset) => {
    const backing = new Uint8Array(offset + pixels * 3);
    for (let k = 0; k < backing.length; k++) backing[k] = (k * 89 + 7) & 0xff;
    const input = backing.subarray(offset);
    const norm: Normalization = { ...imagenet, channelOrder: order };
    const tables = channelTables(norm);
    const out = toNchw(input, pixels, 1, tables, order);
    const first = order === 'BGR' ? 2 : 0;
    const expected = [first, 1, 2 - first].flatMap((src, c) => Array.from({ length: pixels }, (_, i) => tables[c as 0 | 1 | 2][input[i * 3 + src]!]!));
    expect(Array.from(out)).toEqual(expected);
  });

  it('writes into a caller-supplied buffer', () => {
    const out = new Float32Array(6);
    expect(toNchw(rgb, 2, 1, channelTables(imagenet), 'RGB', out)).toBe(out);
  });

  it.each([
    ['wrong pixel count', new Uint8Array(5), new Float32Array(6)],
    ['wrong output size', new Uint8Array(6), new Float32Array(5)],
  ])('rejects %s', (_name, input, out) => {
    expect(() => toNchw(input, 2, 1, channelTables(imagenet), 'RGB', out)).toThrow(RangeError);
  });
});
