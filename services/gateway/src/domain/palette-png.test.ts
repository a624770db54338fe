import { describe, expect, it } from 'vitest';
import { deflateSync, inflateSync } from 'node:zlib';
import sharp from 'sharp';
import { PNG_SIGNATURE, pngChunk, pngHeader, readPngChunks } from '@segserve/runtime';
import { classColor, hexColor, paletteMaskPng } from './palette-png.js';

/** A PNG of class indices, one filter-None scanline per row. */
function png(width: number, height: number, indices: number[], depth = 8, colourType = 0, interlace = 0): Buffer {
  const header = Buffer.from(pngHeader(width, height, depth, colourType));
  header[12] = interlace;
  const rows = Array.from({ length: height }, (_, y) => [0, ...indices.slice(y * width, (y + 1) * width)]).flat();
  return Buffer.concat([PNG_SIGNATURE, pngChunk('IHDR', header), pngChunk('IDAT', deflateSync(Uint8Array.from(rows))), pngChunk('IEND', new Uint8Array(0))]);
}

const byType = (file: Uint8Array): Map<string, Uint8Array> => new Map(readPngChunks(file).map((c) => [c.type, c.data]));

describe('paletteMaskPng', () => {
  it('keeps the scanlines and makes them palette indices in the class colours, background transparent', () => {
    const grey = png(3, 2, [0, 1, 1, 0, 2, 7]);
    const out = byType(paletteMaskPng(grey));
    const ihdr = out.get('IHDR')!;
    expect([...ihdr]).toEqual([...pngHeader(3, 2, 8, 3)]);
    expect(out.get('PLTE')!.length).toBe(256 * 3);
    expect([...out.get('PLTE')!.subarray(7 * 3, 8 * 3)]).toEqual([...classColor(7)]);
    expect([...out.get('tRNS')!]).toEqual([0]);
    expect(Buffer.from(out.get('IDAT')!)).toEqual(Buffer.from(byType(grey).get('IDAT')!));
    expect([...inflateSync(out.get('IDAT')!)]).toEqual([0, 0, 1, 1, 0, 0, 2, 7]);
  });

  it('is an image libvips decodes to the class colours, index 0 transparent', async () => {
    const { data, info } = await sharp(paletteMaskPng(png(2, 1, [0, 1]))).ensureAlpha().raw().toBuffer({ resolveWithObject: true });
    expect([info.width, info.height, info.channels]).toEqual([2, 1, 4]);
    expect([...data.subarray(0, 4)]).toEqual([0, 0, 0, 0]);
    expect([...data.subarray(4, 8)]).toEqual([...classColor(1), 255]);
  });

  it('costs a copy of the PNG, whatever the mask size: nothing is inflated or deflated', () => {
    const side = 4898; // the largest square under the pixel limit
    const grey = Buffer.concat([PNG_SIGNATURE, pngChunk('IHDR', pngHeader(side, side, 8, 0)), pngChunk('IDAT', deflateSync(new Uint8Array((side + 1) * side))), pngChunk('IEND', new Uint8Array(0))]);
    const out = paletteMaskPng(grey);
    expect(out.length).toBe(grey.length + 12 + 256 * 3 + 12 + 1); // + PLTE + tRNS chunks
    expect(Buffer.from(byType(out).get('IDAT')!)).toEqual(Buffer.from(byType(grey).get('IDAT')!));
  });

  it.each([
    ['16-bit grey', png(1, 1, [0, 0], 16)],
    ['RGB', png(1, 1, [0, 0, 0], 8, 2)],
    ['interlaced', png(1, 1, [0], 8, 0, 1)],
    ['not a PNG', Buffer.from('GIF89a')],
    ['cut short', png(4, 4, Array(16).fill(1)).subarray(0, 40)],
  ])('refuses %s', (_what, file) => {
    expect(() => paletteMaskPng(file)).toThrow(RangeError);
  });
});

describe('classColor', () => {
  it('gives stable, distinct colours', () => {
    const colours = new Set(Array.from({ length: 40 }, (_, i) => hexColor(classColor(i))));
    expect(colours.size).toBe(40);
    expect(hexColor(classColor(1))).toBe('#e6194b');
  });
});
