import sharp from 'sharp';
import { crc32 } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { readImageHeader } from './image-header.js';

const rgb = (w: number, h: number): sharp.Sharp => sharp({ create: { width: w, height: h, channels: 3, background: { r: 200, g: 100, b: 50 } } });

/** An APNG: the PNG with an acTL chunk (2 frames) right after IHDR. */
function withAcTL(png: Buffer): Buffer {
  const data = Buffer.alloc(8);
  data.writeUInt32BE(2, 0);
  const head = Buffer.alloc(8);
  head.writeUInt32BE(8, 0);
  head.write('acTL', 4, 'ascii');
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), data])) >>> 0, 0);
  return Buffer.concat([png.subarray(0, 33), head, data, crc, png.subarray(33)]);
}

describe('readImageHeader agrees with libvips', () => {
  const cases: [string, () => Promise<Buffer>][] = [
    ['baseline JPEG', () => rgb(37, 21).jpeg().toBuffer()],
    ['progressive JPEG', () => rgb(64, 48).jpeg({ progressive: true }).toBuffer()],
    ['greyscale JPEG', () => rgb(30, 20).greyscale().jpeg().toBuffer()],
    ['JPEG, EXIF orientation 6', () => rgb(40, 30).jpeg().withMetadata({ orientation: 6 }).toBuffer()],
    ['JPEG, EXIF orientation 3', () => rgb(40, 30).jpeg().withMetadata({ orientation: 3 }).toBuffer()],
    ['PNG RGB', () => rgb(33, 17).png().toBuffer()],
    ['PNG RGBA', () => sharp({ create: { width: 9, height: 5, channels: 4, background: { r: 1, g: 2, b: 3, alpha: 0.5 } } }).png().toBuffer()],
    ['PNG 16-bit grey', () => rgb(8, 8).greyscale().toColourspace('grey16').png().toBuffer()],
    ['PNG palette', () => rgb(12, 7).png({ palette: true }).toBuffer()],
    ['PNG interlaced', () => rgb(12, 7).png({ progressive: true }).toBuffer()],
    ['PNG, EXIF orientation 8', () => rgb(20, 10).png().withMetadata({ orientation: 8 }).toBuffer()],
    ['WebP lossy', () => rgb(50, 30).webp().toBuffer()],
    ['WebP lossless', () => rgb(50, 31).webp({ lossless: true }).toBuffer()],
    ['WebP with alpha', () => sharp({ create: { width: 21, height: 13, channels: 4, background: { r: 1, g: 2, b: 3, alpha: 0.5 } } }).webp().toBuffer()],
    ['WebP, EXIF orientation 6', () => rgb(40, 30).webp().withMetadata({ orientation: 6 }).toBuffer()],
  ];
  it.each(cases)('%s', async (_name, make) => {
    const bytes = await make();
    const meta = await sharp(bytes).metadata();
    const h = readImageHeader(bytes);
    expect(h.format).toBe(meta.format);
    expect([h.storedWidth, h.storedHeight]).toEqual([meta.width, meta.height]);
    expect([h.width, h.height]).toEqual([meta.autoOrient.width, meta.autoOrient.height]);
    expect(h.orientation).toBe(meta.orientation ?? 1);
    expect(h.channels).toBe(meta.channels);
    expect(h.progressive).toBe(meta.isProgressive ?? false);
    expect(h.animated).toBe(false);
  });
});

describe('readImageHeader refuses', () => {
  it('animated WebP and APNG are recognised as animated', async () => {
    // Two frames: a tall raw image split into pages of 8 rows.
    const frames = Buffer.concat([Buffer.alloc(16 * 16 * 3, 200), Buffer.alloc(16 * 16 * 3, 30)]);
    const twoPages = await sharp(frames, { raw: { width: 16, height: 32, channels: 3, pageHeight: 16 } }).webp({ loop: 0 }).toBuffer();
    expect((await sharp(twoPages).metadata()).pages).toBe(2);
    expect(readImageHeader(twoPages).animated).toBe(true);
    expect(readImageHeader(withAcTL(await rgb(8, 8).png().toBuffer())).animated).toBe(true);
  });

  it.each<[string, Uint8Array, string]>([
    ['empty', new Uint8Array(0), 'INVALID_INPUT'],
    ['text', Buffer.from('hello world'), 'UNSUPPORTED_MEDIA_TYPE'],
    ['GIF', Buffer.from('GIF89a\x01\x00\x01\x00'), 'UNSUPPORTED_MEDIA_TYPE'],
    ['JPEG signature only', Uint8Array.of(0xff, 0xd8, 0xff, 0xe0), 'INVALID_INPUT'],
    ['JPEG scan before any frame header', Uint8Array.of(0xff, 0xd8, 0xff, 0xda, 0, 2, 0, 0), 'INVALID_INPUT'],
    ['PNG signature only', Uint8Array.of(0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a), 'INVALID_INPUT'],
    ['WebP, unknown chunk', Buffer.concat([Buffer.from('RIFF\x20\x00\x00\x00WEBPJUNK'), Buffer.alloc(24)]), 'INVALID_INPUT'],
  ])('%s → %s', (_name, bytes, code) => {
    expect(() => readImageHeader(bytes)).toThrow(expect.objectContaining({ code }));
  });

  it('a zero-sized PNG header', async () => {
    const png = Buffer.from(await rgb(4, 4).png().toBuffer());
    png.writeUInt32BE(0, 16);
    expect(() => readImageHeader(png)).toThrow(expect.objectContaining({ code: 'INVALID_INPUT' }));
  });
});
