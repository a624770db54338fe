import { describe, expect, it } from 'vitest';
import { TensorBuilder, channelTables, type Normalization } from './tensor.js';

const imagenet: Normalization = { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225], scale: 1 / 255, channelOrder: 'RGB' };

describe('TensorBuilder', () => {
  // Two pixels: (10, 20, 30) and (200, 100, 0).
  const rgb = Uint8Array.from([10, 20, 30, 200, 100, 0]);

  it.each<[string, Normalization, number[]]>([
    ['identity RGB', { mean: [0, 0, 0], std: [1, 1, 1], scale: 1, channelOrder: 'RGB' }, [10, 200, 20, 100, 30, 0]],
    ['identity BGR puts blue first', { mean: [0, 0, 0], std: [1, 1, 1], scale: 1, channelOrder: 'BGR' }, [30, 0, 20, 100, 10, 200]],
    ['scale, mean, std per tensor channel', { mean: [1, 2, 3], std: [2, 4, 8], scale: 0.5, channelOrder: 'RGB' }, [2, 49.5, 2, 12, 1.5, -0.375]],
    ['BGR uses mean/std of the tensor channel', { mean: [1, 2, 3], std: [2, 4, 8], scale: 0.5, channelOrder: 'BGR' }, [7, -0.5, 2, 12, 0.25, 12.125]],
  ])('%s', (_name, norm, expected) => {
    const out = new TensorBuilder(2, 1, norm).from(rgb);
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

  // Four pixels at a time from three 32-bit words; the rest one by one.
  it.each([
    ['RGB, a tail of 3', 'RGB', 7, 1],
    ['BGR, no tail', 'BGR', 8, 1],
    ['RGB, rows of a tail of 1', 'RGB', 5, 3],
    ['BGR, one pixel', 'BGR', 1, 1],
  ] as const)('equals the per-pixel formula: %s', (_name, order, width, height) => {
    const pixels = width * height;
    const input = Uint8Array.from({ length: pixels * 3 }, (_, k) => (k * 89 + 7) & 0xff);
    const norm: Normalization = { ...imagenet, channelOrder: order };
    const out = new TensorBuilder(width, height, norm).from(input);
    const first = order === 'BGR' ? 2 : 0;
    const expected = [first, 1, 2 - first].flatMap((src, c) => Array.from({ length: pixels }, (_, i) => Math.fround((input[i * 3 + src]! / 255 - norm.mean[c]!) / norm.std[c]!)));
    expect(Array.from(out)).toEqual(expected);
  });

  it('covers every byte value in every channel and position of a four-pixel step, at a model size', () => {
    const [width, height] = [1152, 768];
    const input = Uint8Array.from({ length: width * height * 3 }, (_, k) => (k * 2654435761) >>> 24);
    const builder = new TensorBuilder(width, height, imagenet);
    const tables = channelTables(imagenet);
    const out = builder.from(input);
    const plane = width * height;
    let wrong = 0;
    for (let i = 0; i < plane; i++) {
      for (let c = 0; c < 3; c++) if (out[c * plane + i] !== tables[c as 0 | 1 | 2][input[i * 3 + c]!]) wrong++;
    }
    expect(wrong).toBe(0);
    // A second image overwrites the first completely.
    const second = input.map((v) => 255 - v);
    builder.rgb.set(second);
    expect(builder.build()).toBe(out);
    for (let i = 0; i < plane; i += 997) expect(out[plane + i]).toBe(tables[1][second[i * 3 + 1]!]);
  });

  it('rejects an image of another size', () => {
    const builder = new TensorBuilder(2, 1, imagenet);
    expect(() => builder.from(new Uint8Array(5))).toThrow(RangeError);
    expect(() => builder.from(new Uint8Array(9))).toThrow(RangeError);
  });
});
