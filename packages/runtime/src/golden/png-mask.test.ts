import { readFileSync } from 'node:fs';
import { deflateSync } from 'node:zlib';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { decodePngMask } from './png-mask.js';

// Vectors written by PIL (Debian python3-pil): 8-bit grey with adaptive filters, 2-bit palette
// (indices, not colours), 1-bit grey.
const PATTERN = [
  [0, 1, 2, 0, 1, 2, 0],
  [1, 2, 0, 1, 2, 0, 1],
  [2, 0, 1, 2, 0, 1, 2],
  [0, 1, 2, 0, 1, 2, 0],
  [1, 2, 0, 1, 2, 0, 1],
].flat();
const L8 = 'iVBORw0KGgoAAAANSUhEUgAAAAcAAAAFCAAAAACs8akEAAAAGElEQVR42mNgYGRiYGRigFKMDEyoAjBxAALJACNPKgiTAAAAAElFTkSuQmCC';
const P2 = 'iVBORw0KGgoAAAANSUhEUgAAAAcAAAAFAgMAAAD09B5LAAAADFBMVEUAAAD/AAAA/wAAAAC2wvxRAAAAE0lEQVR4nGOQSGBIbGFok2AAMwAXqANZb22OSgAAAABJRU5ErkJggg==';
const G1 = 'iVBORw0KGgoAAAANSUhEUgAAAAcAAAAFAQAAAACh4ct1AAAAEklEQVR4nGPIYbjFdIdpG8MtABEoA7cpy5S4AAAAAElFTkSuQmCC';
const BIG =
  'iVBORw0KGgoAAAANSUhEUgAAADIAAAAoCAAAAACZGfaQAAABVUlEQVR42pWVWQ4DMQhD/WZ6/yvTjyyYJJWaqmqzAcYBR0JISOOvj+hLbX9ukz8gSe3csIW+3T1Nf32JMZ2mY0jakHAqAMqJjGR+BhT35hEpUbWgZIBypz3RJS2MrOqrOalhcIALN3WpH34TNo7i6LVFfEIi0oq8ne4sRExKxlGi0vD7E4T08O/xZiPpE7qyES39v62QxHNhIAVCL9zYzEaJC5vgLpcQald5gSukD43sm2QESylRvtbgffZmUWnvcUFQmignXTLwNjJHVBDus4hFExhrPgypKRF7x3mwTJadBB0ittHbMjz0dTXmpD+zy1mTY43KxGWiaVmWjFWEQJMeF1EKM+wiVwQZ7WJ9Kp5EUUjWplQksqp7JupHHXdNPrG16qHf5rI5cMAi3myXV2q0PI84k72gS60tYm/M8mP98CRgrx3seVCbxD0zr8bawFgc7HwBz8MUxl5Pf74AAAAASUVORK5CYII=';
const b64 = (s: string) => new Uint8Array(Buffer.from(s, 'base64'));

/** A 1×1 RGB PNG, written here: colour type 2. */
function rgbPng(): Uint8Array {
  const chunk = (type: string, body: Buffer): Buffer => {
    const head = Buffer.alloc(8);
    head.writeUInt32BE(body.length, 0);
    head.write(type, 4, 'latin1');
    return Buffer.concat([head, body, Buffer.alloc(4)]); // the decoder does not check CRCs
  };
  const ihdr = Buffer.from([0, 0, 0, 1, 0, 0, 0, 1, 8, 2, 0, 0, 0]);
  return new Uint8Array(Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr), chunk('IDAT', deflateSync(Buffer.from([0, 1, 1, 1]))), chunk('IEND', Buffer.alloc(0))]));
}

describe('decodePngMask', () => {
  it.each([
    ['8-bit grey', L8, PATTERN],
    ['2-bit palette: the indices', P2, PATTERN],
    ['1-bit grey', G1, PATTERN.map((v) => (v > 0 ? 1 : 0))],
  ])('%s', (_name, data, pixels) => {
    const mask = decodePngMask(b64(data));
    expect({ width: mask.width, height: mask.height }).toEqual({ width: 7, height: 5 });
    expect([...mask.pixels]).toEqual(pixels);
  });

  it('undoes every scanline filter (a 50×40 mask written with optimize)', () => {
    const mask = decodePngMask(b64(BIG));
    const sum = mask.pixels.reduce((a, b) => a + b, 0);
    const weighted = mask.pixels.reduce((a, v, i) => a + v * (i % 50), 0);
    expect([mask.width, mask.height, sum, weighted]).toEqual([50, 40, 861, 20870]);
  });

  it('reads a golden-set mask of the fixtures (0/1, 96×64)', () => {
    const file = fileURLToPath(new URL('../../../../test/fixtures/golden-tiny/masks/facade-00.png', import.meta.url));
    const mask = decodePngMask(new Uint8Array(readFileSync(file)));
    expect([mask.width, mask.height]).toEqual([96, 64]);
    expect(new Set(mask.pixels)).toEqual(new Set([0, 1]));
  });

  it.each([
    ['not a PNG', new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8, 9]), /not a PNG/],
    ['an RGB image', rgbPng(), /a mask must be a single-channel PNG of class indices \(grey or palette\), not RGB/],
    ['truncated data', b64(L8).subarray(0, 45), /truncated|unexpected end|incorrect header|unsupported/],
  ])('refuses %s', (_name, data, message) => {
    expect(() => decodePngMask(data, 'm.png')).toThrow(message);
  });
});
