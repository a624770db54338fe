import { describe, expect, it } from 'vitest';
import { checkImage, jpegShrinkOnLoad, segmentWorkBytes } from './image-cost.js';
import type { ImageHeader } from './image-header.js';

const header = (over: Partial<ImageHeader>): ImageHeader => {
  const h = { format: 'jpeg', storedWidth: 1152, storedHeight: 768, channels: 3, bytesPerSample: 1, orientation: 1, progressive: false, animated: false, ...over } as const;
  const swap = h.orientation >= 5;
  return { ...h, width: swap ? h.storedHeight : h.storedWidth, height: swap ? h.storedWidth : h.storedHeight };
};
const limits = { maxPixels: 24_000_000, maxAspectFactor: 8 };
const model = { width: 288, height: 192 };

describe('checkImage', () => {
  it.each<[string, Partial<ImageHeader>, string | undefined]>([
    ['a photo', {}, undefined],
    ['portrait 3:4 on a 3:2 model', { storedWidth: 3000, storedHeight: 4000 }, undefined],
    ['a 12:1 panorama', { storedWidth: 12000, storedHeight: 1000 }, undefined],
    ['24000000×1', { format: 'png', storedWidth: 24_000_000, storedHeight: 1 }, 'TOO_LARGE'],
    ['1×24000000', { format: 'png', storedWidth: 1, storedHeight: 24_000_000 }, 'TOO_LARGE'],
    ['a 1:6 strip (9× too tall for 3:2)', { storedWidth: 500, storedHeight: 3000 }, 'TOO_LARGE'],
    ['20000×20000', { storedWidth: 20000, storedHeight: 20000 }, 'TOO_LARGE'],
    ['animated', { format: 'webp', animated: true }, 'UNSUPPORTED_MEDIA_TYPE'],
  ])('%s → %s', (_name, over, code) => {
    const run = (): void => checkImage(header(over), limits, model);
    if (code === undefined) expect(run).not.toThrow();
    else expect(run).toThrow(expect.objectContaining({ code }));
  });
});

describe('jpegShrinkOnLoad (sharp\'s rule)', () => {
  it.each<[number, number, number, number, number]>([
    [1152, 768, 288, 192, 2], // exactly 4: halved for libjpeg's rounding
    [1152, 768, 1152, 768, 1],
    [4000, 3000, 288, 192, 8],
    [1152, 768, 144, 96, 4],
    [2000, 1500, 288, 192, 4],
    [1152, 768, 576, 384, 1],
  ])('%i×%i → %i×%i: 1/%i', (w, h, tw, th, s) => {
    expect(jpegShrinkOnLoad(w, h, { width: tw, height: th })).toBe(s);
  });
});

describe('segmentWorkBytes', () => {
  it.each<[string, Partial<ImageHeader>, number]>([
    // decoded 576×384×3 + model RGB 288×192×3 + class map 288×192 + mask 1152×768
    ['JPEG 1152×768 on 288×192', {}, 576 * 384 * 3 + 288 * 192 * 4 + 1152 * 768],
    ['PNG 1152×768: decoded in full', { format: 'png' }, 1152 * 768 * 3 + 288 * 192 * 4 + 1152 * 768],
    ['progressive JPEG: its coefficients too', { progressive: true }, 576 * 384 * 3 + 1152 * 768 * 3 * 2 + 288 * 192 * 4 + 1152 * 768],
    ['16-bit RGBA PNG', { format: 'png', channels: 4, bytesPerSample: 2, storedWidth: 100, storedHeight: 100 }, 100 * 100 * 8 + 288 * 192 * 4 + 100 * 100],
  ])('%s', (_name, over, bytes) => {
    expect(segmentWorkBytes(header(over), model)).toBe(bytes);
  });

  it('grows with the pixels of a PNG: the 24 MP one costs ~100× a photo-sized one', () => {
    const small = segmentWorkBytes(header({ format: 'png', storedWidth: 600, storedHeight: 400 }), model);
    const big = segmentWorkBytes(header({ format: 'png', storedWidth: 6000, storedHeight: 4000 }), model);
    expect(big / small).toBeGreaterThan(80);
  });
});
