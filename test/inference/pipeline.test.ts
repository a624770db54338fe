// The served mask equals an independent reference built on a direct onnxruntime session.run
// over the same tensor: logits, sigmoid and BGR probabilities models, odd image sizes, an
// EXIF-rotated JPEG, PNG/RAW/WebP/JPEG inputs (issue 2, "Tests").

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import sharp from 'sharp';
import { MODELS, png, referenceMask, rotate90cw, segment, startTestServer, syntheticImage, type RawImage, type TestServer } from './helpers.js';

const servers: Partial<Record<keyof typeof MODELS, TestServer>> = {};

beforeAll(async () => {
  for (const name of ['seg', 'sigmoid', 'prob'] as const) servers[name] = await startTestServer({ model: MODELS[name] });
});

afterAll(async () => {
  for (const s of Object.values(servers)) await s.stop();
});

function server(name: keyof typeof MODELS): TestServer {
  const s = servers[name];
  if (!s) throw new Error(`no server for ${name}`);
  return s;
}

async function served(name: 'seg' | 'sigmoid' | 'prob', image: Buffer, format: 'RAW' | 'PNG' = 'RAW'): Promise<{ mask: Uint8Array; width: number; height: number; classes: { name: string; pixels: string; fraction: number }[] }> {
  const r = await segment(server(name).clients, image, { mask_format: format });
  expect(r.error?.details).toBeUndefined();
  const v = r.value!;
  if (format === 'RAW') return { mask: new Uint8Array(v.mask), width: v.width, height: v.height, classes: v.classes };
  expect((await sharp(v.mask).metadata()).channels).toBe(1);
  const { data, info } = await sharp(v.mask).toColourspace('b-w').raw().toBuffer({ resolveWithObject: true });
  expect(info.channels).toBe(1);
  return { mask: new Uint8Array(data), width: info.width, height: info.height, classes: v.classes };
}

function countOf(mask: Uint8Array, value: number): number {
  return mask.reduce((n, v) => n + (v === value ? 1 : 0), 0);
}

describe('mask = direct session.run on the same tensor', () => {
  it.each<[string, 'seg' | 'sigmoid' | 'prob', number, number]>([
    ['logits, model size', 'seg', 96, 64],
    ['logits, odd size up', 'seg', 97, 65],
    ['logits, tall and narrow', 'seg', 41, 201],
    ['logits, 1×1', 'seg', 1, 1],
    ['logits, larger than the model', 'seg', 301, 199],
    ['sigmoid, odd size', 'sigmoid', 131, 77],
    ['probabilities, BGR, 3 classes', 'prob', 123, 89],
  ])('%s (%s, %i×%i PNG)', async (_name, model, w, h) => {
    const img = syntheticImage(w, h, w * 1000 + h);
    const got = await served(model, await png(img));
    expect([got.width, got.height]).toEqual([w, h]);
    const expected = await referenceMask(MODELS[model], img);
    expect(Buffer.from(got.mask).equals(Buffer.from(expected))).toBe(true);
  });

  it('the masks are not trivial (the model responds to the red signs)', async () => {
    const got = await served('seg', await png(syntheticImage(120, 80, 3)));
    const ad = countOf(got.mask, 1);
    expect(ad).toBeGreaterThan(0);
    expect(ad).toBeLessThan(got.mask.length);
  });

  it('PNG masks decode to the same class indices as RAW, and class stats count them', async () => {
    const image = await png(syntheticImage(150, 100, 9));
    const raw = await served('prob', image, 'RAW');
    const pngMask = await served('prob', image, 'PNG');
    expect(Buffer.from(pngMask.mask).equals(Buffer.from(raw.mask))).toBe(true);
    expect(raw.classes.map((c) => c.name)).toEqual(['background', 'advertising', 'window']);
    raw.classes.forEach((c, i) => {
      expect(Number(c.pixels)).toBe(countOf(raw.mask, i));
      expect(c.fraction).toBeCloseTo(countOf(raw.mask, i) / raw.mask.length, 12);
    });
  });

  it('applies EXIF orientation: a JPEG tagged "rotate 90°" is segmented as displayed', async () => {
    const stored = syntheticImage(90, 130, 42);
    const jpeg = await sharp(stored.data, { raw: { width: 90, height: 130, channels: 3 } }).jpeg({ quality: 95 }).withMetadata({ orientation: 6 }).toBuffer();
    expect((await sharp(jpeg).metadata()).orientation).toBe(6);
    // The decoder's pixels, rotated the way a viewer would: the image the user sees.
    const decoded = await sharp(jpeg).raw().toBuffer({ resolveWithObject: true });
    const shown: RawImage = rotate90cw({ data: decoded.data, width: decoded.info.width, height: decoded.info.height });
    const got = await served('seg', jpeg);
    expect([got.width, got.height]).toEqual([130, 90]);
    expect(Buffer.from(got.mask).equals(Buffer.from(await referenceMask(MODELS.seg, shown)))).toBe(true);
  });

  it.each<[string, (img: RawImage) => Promise<Buffer>]>([
    ['JPEG', (img) => sharp(img.data, { raw: { width: img.width, height: img.height, channels: 3 } }).jpeg({ quality: 90 }).toBuffer()],
    ['WebP', (img) => sharp(img.data, { raw: { width: img.width, height: img.height, channels: 3 } }).webp({ lossless: true }).toBuffer()],
    ['RGBA PNG', (img) => sharp(img.data, { raw: { width: img.width, height: img.height, channels: 3 } }).ensureAlpha().png().toBuffer()],
    ['greyscale PNG', (img) => sharp(img.data, { raw: { width: img.width, height: img.height, channels: 3 } }).greyscale().png().toBuffer()],
  ])('decodes %s to the pixels the reference sees', async (_name, encode) => {
    const img = syntheticImage(77, 55, 5);
    const bytes = await encode(img);
    const { data } = await sharp(bytes).removeAlpha().toColourspace('srgb').raw().toBuffer({ resolveWithObject: true });
    const got = await served('seg', bytes);
    expect(Buffer.from(got.mask).equals(Buffer.from(await referenceMask(MODELS.seg, { data, width: 77, height: 55 })))).toBe(true);
  });
});
