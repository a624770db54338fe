import sharp from 'sharp';
import { inflateSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { resizeNearest } from './mask.js';
import { encodeMaskPng, maskIdat } from './mask-png.js';

function randomMask(w: number, h: number, classes: number, seed: number): Uint8Array {
  let s = seed;
  const rnd = (): number => (s = (s * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  const m = new Uint8Array(w * h);
  // Blocky regions like a segmentation, plus scattered single pixels.
  for (let i = 0; i < m.length; i++) m[i] = rnd() < 0.05 ? Math.floor(rnd() * classes) : (Math.floor((i % w) / 5) + Math.floor(i / w / 3)) % classes;
  return m;
}

/** The PNG's pixels, un-filtered by hand from the inflated IDAT (Up and Sub only). */
function unfilter(idat: Uint8Array, w: number, h: number): Uint8Array {
  const raw = inflateSync(idat);
  expect(raw.length).toBe((w + 1) * h);
  const out = new Uint8Array(w * h);
  for (let y = 0; y < h; y++) {
    const f = raw[y * (w + 1)]!;
    for (let x = 0; x < w; x++) {
      const v = raw[y * (w + 1) + 1 + x]!;
      const left = x > 0 ? out[y * w + x - 1]! : 0;
      const up = y > 0 ? out[(y - 1) * w + x]! : 0;
      out[y * w + x] = (v + (f === 1 ? left : f === 2 ? up : 0)) & 0xff;
    }
  }
  return out;
}

describe('maskIdat / encodeMaskPng', () => {
  it.each<[string, number, number, number, number, number]>([
    ['4× up (288×192 model, 1152×768 photo)', 72, 48, 288, 192, 2],
    ['same size', 50, 30, 50, 30, 2],
    ['down (model larger than the image)', 64, 40, 17, 11, 2],
    ['odd factors', 29, 19, 100, 77, 5],
    ['long rows (runs beyond 258 bytes)', 3, 2, 2000, 5, 2],
    ['one pixel', 1, 1, 1, 1, 2],
    ['many classes (values ≥ 144 use 9-bit codes)', 40, 20, 130, 61, 256],
  ])('%s: decodes to resizeNearest exactly, by zlib and by libvips', async (_name, sw, sh, w, h, classes) => {
    const src = randomMask(sw, sh, classes, sw * 31 + h);
    const expected = resizeNearest(src, sw, sh, w, h);
    expect(Buffer.compare(unfilter(maskIdat(src, sw, sh, w, h), w, h), expected)).toBe(0);
    const png = encodeMaskPng(src, sw, sh, w, h);
    const { data, info } = await sharp(png).toColourspace('b-w').raw().toBuffer({ resolveWithObject: true });
    expect((await sharp(png).metadata()).channels).toBe(1);
    expect([info.width, info.height, info.channels]).toEqual([w, h, 1]);
    expect(Buffer.compare(data, expected)).toBe(0);
  });

  it('stays small: repeated rows and runs cost a few bytes', () => {
    const src = new Uint8Array(288 * 192);
    src.fill(1, 100 * 288, 150 * 288);
    expect(encodeMaskPng(src, 288, 192, 1152, 768).length).toBeLessThan(16 * 1024);
  });
});
