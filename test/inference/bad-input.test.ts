// Bad input at the inference service (docs/reliability.md items 5–10, 12): the right code from the error
// table, in the gRPC status and the segserve-error-code trailer, no inference for input that
// cannot be decoded, and a server that stays up.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as grpc from '@grpc/grpc-js';
import sharp from 'sharp';
import { MODELS, clients, healthStatus, parseSample, png, pngBomb, segment, startTestServer, syntheticImage, type TestServer } from './helpers.js';

let server: TestServer;

beforeAll(async () => {
  // A small message limit so that item 10 needs no 32 MiB payload.
  server = await startTestServer({ model: MODELS.seg, env: { SEGSERVE_MAX_MESSAGE_BYTES: String(1024 * 1024), SEGSERVE_MAX_INPUT_PIXELS: String(4_000_000) } });
});

afterAll(async () => {
  await server.stop();
});

const inferRuns = async (): Promise<number> => parseSample(await server.metrics(), 'segserve_inference_duration_seconds_count', { model: 'tiny-seg', version: '1', stage: 'infer' }) ?? 0;

async function expectServing(): Promise<void> {
  expect(await healthStatus(server.clients)).toBe('SERVING');
  const ok = await segment(server.clients, await png(syntheticImage(40, 30)));
  expect(ok.error?.details).toBeUndefined();
}

async function jpeg(): Promise<Buffer> {
  const img = syntheticImage(200, 150, 11);
  return sharp(img.data, { raw: { width: 200, height: 150, channels: 3 } }).jpeg({ quality: 90 }).toBuffer();
}

const SVG = Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64"><rect width="64" height="64" fill="red"/></svg>');
const PDF = Buffer.from('%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n');

async function sixChannelTiff(): Promise<Buffer> {
  const rgb = sharp({ create: { width: 16, height: 16, channels: 3, background: { r: 200, g: 10, b: 10 } } });
  return rgb.joinChannel([await sharp({ create: { width: 16, height: 16, channels: 3, background: { r: 1, g: 2, b: 3 } } }).raw().toBuffer()], { raw: { width: 16, height: 16, channels: 3 } }).tiff().toBuffer();
}

/** Two 16×16 frames → a 2-page animation. */
async function animated(format: 'gif' | 'webp'): Promise<Buffer> {
  const frames = Buffer.concat([Buffer.alloc(16 * 16 * 3, 200), Buffer.alloc(16 * 16 * 3, 30)]);
  const out = await sharp(frames, { raw: { width: 16, height: 32, channels: 3, pageHeight: 16 } }).toFormat(format, { loop: 0 }).toBuffer();
  expect((await sharp(out).metadata()).pages).toBe(2);
  return out;
}

describe('bad input at the inference service', () => {
  it.each<[string, () => Promise<Buffer> | Buffer]>([
    ['text declared as an image (item 5)', () => Buffer.from('hello, this is not an image\n')],
    ['a PDF (item 5)', () => PDF],
    ['an SVG (item 8)', () => SVG],
    ['a 6-channel TIFF (item 8)', sixChannelTiff],
    ['an animated GIF (item 8)', () => animated('gif')],
    ['an animated WebP (allowlisted format, but animated)', () => animated('webp')],
  ])('%s → UNSUPPORTED_MEDIA_TYPE, judged by content, no inference', async (_name, make) => {
    const bytes = await make();
    const before = await inferRuns();
    const r = await segment(server.clients, bytes);
    expect(r.error?.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(r.code).toBe('UNSUPPORTED_MEDIA_TYPE');
    expect(await inferRuns()).toBe(before);
  });

  it('a small PNG declaring 20000×20000 pixels → TOO_LARGE before decoding (item 6)', async () => {
    const bomb = pngBomb(20_000, 20_000);
    expect(bomb.length).toBeLessThan(100);
    const before = await inferRuns();
    const r = await segment(server.clients, bomb);
    expect(r.error?.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    expect(r.code).toBe('TOO_LARGE');
    expect(r.error?.details).toMatch(/20000×20000/);
    expect(await inferRuns()).toBe(before);
  });

  it('a truncated JPEG → INVALID_INPUT and no inference runs (item 7)', async () => {
    const full = await jpeg();
    const before = await inferRuns();
    for (const cut of [0.5, 0.9]) {
      const r = await segment(server.clients, full.subarray(0, Math.floor(full.length * cut)));
      expect(r.error?.code).toBe(grpc.status.INVALID_ARGUMENT);
      expect(r.code).toBe('INVALID_INPUT');
    }
    expect(await inferRuns()).toBe(before);
  });

  it('an empty image → INVALID_INPUT', async () => {
    const r = await segment(server.clients, Buffer.alloc(0));
    expect(r.code).toBe('INVALID_INPUT');
  });

  it('ten pixel bombs at once → all rejected, the server stays up (item 9)', async () => {
    const rss0 = process.memoryUsage().rss;
    const results = await Promise.all(Array.from({ length: 10 }, (_, i) => segment(server.clients, pngBomb(20_000 + i, 20_000))));
    expect(results.map((r) => r.code)).toEqual(Array(10).fill('TOO_LARGE'));
    // Nothing near 10 × 1.2 GB of pixels was allocated (the server runs in this process).
    expect(process.memoryUsage().rss - rss0).toBeLessThan(200 * 1024 * 1024);
    await expectServing();
  });

  it('a gRPC message over the max size → RESOURCE_EXHAUSTED, server up (item 10)', async () => {
    const big = Buffer.alloc(2 * 1024 * 1024, 7);
    const r = await segment(server.clients, big);
    expect(r.error?.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    await expectServing();
  });

  it('an image over the pixel limit with a valid body → TOO_LARGE', async () => {
    const r = await segment(server.clients, await sharp({ create: { width: 2500, height: 2000, channels: 3, background: '#808080' } }).png({ compressionLevel: 9 }).toBuffer());
    expect(r.code).toBe('TOO_LARGE');
  });

  it.each([
    ['unknown model', { model: 'no-such-model' }],
    ['unknown version', { model: 'tiny-seg', version: '7' }],
  ])('%s → NOT_FOUND (item 12)', async (_name, extra) => {
    const r = await segment(server.clients, await png(syntheticImage(10, 10)), extra);
    expect(r.error?.code).toBe(grpc.status.NOT_FOUND);
    expect(r.code).toBe('MODEL_NOT_FOUND');
  });

  it('answers a client whose own limit is the same 1 MiB, and logs no image bytes', async () => {
    const small = clients(server.target, { 'grpc.max_send_message_length': 1024 * 1024 });
    try {
      const r = await segment(small, await png(syntheticImage(64, 64)));
      expect(r.value?.width).toBe(64);
    } finally {
      small.close();
    }
    expect(server.logs.every((l) => l.length < 4000)).toBe(true);
  });
});
