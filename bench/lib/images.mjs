// Upload sets. The reference workload is the golden set's JPEGs: 1152×768 photographs of 74–241
// KiB, i.e. realistic uploads. The soak adds other sizes and bad inputs.
import { readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { deflateSync } from 'node:zlib';
import sharp from 'sharp';
import { REPO } from './procs.mjs';

export const GOLDEN_IMAGES = path.join(REPO, 'models', 'facade-ads', 'golden', 'images');

/** [{file, bytes}] of every image in `dir`, sorted by name. */
export function loadImages(dir = GOLDEN_IMAGES) {
  return readdirSync(dir)
    .filter((f) => /\.(jpe?g|png|webp)$/i.test(f))
    .sort()
    .map((f) => ({ file: path.join(dir, f), bytes: readFileSync(path.join(dir, f)) }));
}

export function describeImages(images) {
  const kib = images.map((i) => i.bytes.length / 1024);
  return { count: images.length, min_kib: Math.round(Math.min(...kib)), max_kib: Math.round(Math.max(...kib)), mean_kib: Math.round(kib.reduce((a, b) => a + b, 0) / kib.length) };
}

/** The same photographs at other sizes (JPEG q90): small phone shots to 3000-pixel uploads. */
export async function resizedSet(images, widths = [480, 800, 1152, 2048, 3000]) {
  const out = [];
  for (const [i, img] of images.entries()) {
    const w = widths[i % widths.length];
    const bytes = await sharp(img.bytes).resize({ width: w }).jpeg({ quality: 90 }).toBuffer();
    out.push({ file: `${path.basename(img.file)}@${w}`, bytes, kind: `jpeg-${w}` });
  }
  return out;
}

function crc32(buf) {
  let c = ~0;
  for (const b of buf) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = (c >>> 1) ^ (0xedb88320 & -(c & 1));
  }
  return ~c >>> 0;
}

/** A PNG whose header declares width × height but carries almost no data (a "pixel bomb"). */
export function pngDeclaring(width, height) {
  const chunk = (type, data) => {
    const head = Buffer.alloc(8);
    head.writeUInt32BE(data.length, 0);
    head.write(type, 4, 'ascii');
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), data])), 0);
    return Buffer.concat([head, data, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8;
  ihdr[9] = 2;
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr), chunk('IDAT', deflateSync(Buffer.alloc(1024))), chunk('IEND', Buffer.alloc(0))]);
}

/** Bad uploads with the code each must get (docs/architecture.md#errors). */
export function badInputs(sample) {
  return [
    { kind: 'truncated-jpeg', bytes: sample.subarray(0, Math.floor(sample.length / 3)), expect: ['INVALID_INPUT'] },
    { kind: 'text', bytes: Buffer.from('this is not an image\n'.repeat(50)), expect: ['INVALID_INPUT', 'UNSUPPORTED_MEDIA_TYPE'] },
    { kind: 'pdf', bytes: Buffer.from('%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\n%%EOF\n'), expect: ['INVALID_INPUT', 'UNSUPPORTED_MEDIA_TYPE'] },
    { kind: 'pixel-bomb', bytes: pngDeclaring(20000, 20000), expect: ['TOO_LARGE'] },
    { kind: 'empty', bytes: Buffer.alloc(0), expect: ['INVALID_INPUT'] },
    { kind: 'svg', bytes: Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>'), expect: ['INVALID_INPUT', 'UNSUPPORTED_MEDIA_TYPE'] },
  ];
}
