// The Segment mask as a PNG (one 8-bit grey channel, values = class indices) written straight
// from the class map at the model's resolution, nearest-neighbour scaled to the image's size on
// the way (pixel centres, as resizeNearest). The full-size mask is never materialised: a row
// repeated from the one above is PNG filter Up (all zeros), a new row is filter Sub (non-zero
// only where the class changes), and the zlib stream is written by hand with fixed Huffman
// codes, runs of zeros as distance-1 copies. Cost grows with rows and class boundaries, not
// with pixels; the adler32 of the runs is computed arithmetically.

import { PNG_SIGNATURE, pngChunk, pngHeader } from '@segserve/runtime';
import { nearestSource } from './mask.js';

const ADLER_MOD = 65521;
/** deflate's longest copy. */
const MAX_MATCH = 258;

/** Bit writer for a deflate stream (least significant bit first). */
class BitWriter {
  #buf: Uint8Array;
  #pos = 0;
  #acc = 0;
  #bits = 0;

  constructor(capacity: number) {
    this.#buf = new Uint8Array(Math.max(64, capacity));
  }

  write(value: number, count: number): void {
    this.#acc |= value << this.#bits;
    this.#bits += count;
    while (this.#bits >= 8) {
      if (this.#pos === this.#buf.length) this.#grow();
      this.#buf[this.#pos++] = this.#acc & 0xff;
      this.#acc >>>= 8;
      this.#bits -= 8;
    }
  }

  /** Huffman codes are stored most significant bit first. */
  writeReversed(code: number, count: number): void {
    let r = 0;
    for (let i = 0; i < count; i++) r |= ((code >>> i) & 1) << (count - 1 - i);
    this.write(r, count);
  }

  finish(): Uint8Array {
    if (this.#bits > 0) this.write(0, 8 - this.#bits);
    return this.#buf.subarray(0, this.#pos);
  }

  #grow(): void {
    const next = new Uint8Array(this.#buf.length * 2);
    next.set(this.#buf);
    this.#buf = next;
  }
}

// Length codes 257–285: base lengths and extra bits (RFC 1951 §3.2.5).
const LENGTH_BASE = [3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258];
const LENGTH_EXTRA = [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0];
/** For each match length 3..258: the index of its length code. */
const LENGTH_INDEX = (() => {
  const t = new Uint8Array(MAX_MATCH + 1);
  for (let i = 0; i < LENGTH_BASE.length; i++) {
    const end = i + 1 < LENGTH_BASE.length ? LENGTH_BASE[i + 1]! : MAX_MATCH + 1;
    for (let len = LENGTH_BASE[i]!; len < end; len++) t[len] = i;
  }
  t[MAX_MATCH] = LENGTH_BASE.length - 1;
  return t;
})();

/** A zlib stream of fixed-Huffman literals and distance-1 runs, with its adler32 kept. */
class RunDeflater {
  readonly #out: BitWriter;
  #a = 1;
  #b = 0;
  /** The last byte written (a run copies it); -1 before the first. */
  #last = -1;

  constructor(capacity: number) {
    this.#out = new BitWriter(capacity);
    this.#out.write(0x78, 8);
    this.#out.write(0x01, 8);
    this.#out.write(1, 1); // BFINAL: one block
    this.#out.write(1, 2); // BTYPE 01: fixed Huffman codes
  }

  literal(v: number): void {
    // Fixed codes: 0–143 are 8 bits from 0x30, 144–255 are 9 bits from 0x190.
    if (v < 144) this.#out.writeReversed(0x30 + v, 8);
    else this.#out.writeReversed(0x190 + v - 144, 9);
    this.#a = (this.#a + v) % ADLER_MOD;
    this.#b = (this.#b + this.#a) % ADLER_MOD;
    this.#last = v;
  }

  /** `n` bytes of value `v`. */
  run(v: number, n: number): void {
    if (n <= 0) return;
    if (this.#last !== v) {
      this.literal(v);
      n--;
    }
    while (n > 0) {
      if (n < 3) {
        for (; n > 0; n--) this.literal(v);
        return;
      }
      // Leave at least 3 for the next copy, so the tail never has to be literals.
      const len = n > MAX_MATCH ? (n - MAX_MATCH < 3 ? n - 3 : MAX_MATCH) : n;
      this.#copy(len);
      // adler32 over len bytes of v: a grows by v each byte, b by each new a.
      this.#b = (this.#b + ((len * this.#a) % ADLER_MOD) + ((v * ((len * (len + 1)) / 2)) % ADLER_MOD)) % ADLER_MOD;
      this.#a = (this.#a + v * len) % ADLER_MOD;
      n -= len;
    }
  }

  #copy(len: number): void {
    const i = LENGTH_INDEX[len]!;
    const code = 257 + i;
    // Fixed codes: 256–279 are 7 bits from 0, 280–287 are 8 bits from 0xc0.
    if (code < 280) this.#out.writeReversed(code - 256, 7);
    else this.#out.writeReversed(0xc0 + code - 280, 8);
    const extra = LENGTH_EXTRA[i]!;
    if (extra > 0) this.#out.write(len - LENGTH_BASE[i]!, extra);
    this.#out.writeReversed(0, 5); // distance code 0 = distance 1
  }

  finish(): Uint8Array {
    this.#out.writeReversed(0, 7); // end of block (256)
    const body = this.#out.finish();
    const out = new Uint8Array(body.length + 4);
    out.set(body);
    const adler = ((this.#b << 16) | this.#a) >>> 0;
    out[body.length] = adler >>> 24;
    out[body.length + 1] = (adler >>> 16) & 0xff;
    out[body.length + 2] = (adler >>> 8) & 0xff;
    out[body.length + 3] = adler & 0xff;
    return out;
  }
}

/** The zlib-compressed, filtered scanlines of the scaled mask (the IDAT payload). */
export function maskIdat(src: Uint8Array, srcWidth: number, srcHeight: number, width: number, height: number): Uint8Array {
  if (src.length !== srcWidth * srcHeight) throw new RangeError(`mask has ${src.length} pixels, expected ${srcWidth}×${srcHeight}`);
  // Destination columns where a new source column starts, and that source column.
  const starts: number[] = [];
  const from: number[] = [];
  for (let x = 0, prev = -1; x < width; x++) {
    const sx = nearestSource(x, srcWidth, width);
    if (sx !== prev) {
      starts.push(x);
      from.push(sx);
      prev = sx;
    }
  }
  const z = new RunDeflater(height * 16);
  let prevRow = -1;
  for (let y = 0; y < height; y++) {
    const sy = nearestSource(y, srcHeight, height);
    if (sy === prevRow) {
      z.literal(2); // Up: the same as the row above
      z.run(0, width);
      continue;
    }
    prevRow = sy;
    z.literal(1); // Sub: each byte minus its left neighbour
    const row = sy * srcWidth;
    let last = 0;
    let x = 0;
    if (srcWidth === width) {
      // Columns one to one (the model's width is the image's): the source row is the row.
      for (let at = 0; at < width; at++) {
        const v = src[row + at]!;
        if (v === last) continue;
        z.run(0, at - x);
        z.literal((v - last) & 0xff);
        x = at + 1;
        last = v;
      }
      z.run(0, width - x);
      continue;
    }
    for (let k = 0; k < starts.length; k++) {
      const v = src[row + from[k]!]!;
      if (v === last) continue;
      const at = starts[k]!;
      z.run(0, at - x);
      z.literal((v - last) & 0xff);
      x = at + 1;
      last = v;
    }
    z.run(0, width - x);
  }
  return z.finish();
}

/** A single-channel 8-bit PNG of resizeNearest(src, srcWidth, srcHeight, width, height). */
export function encodeMaskPng(src: Uint8Array, srcWidth: number, srcHeight: number, width: number, height: number): Buffer {
  if (!(Number.isInteger(width) && Number.isInteger(height) && width > 0 && height > 0)) throw new RangeError(`bad mask size ${width}×${height}`);
  const ihdr = pngHeader(width, height, 8, 0); // 8-bit greyscale
  return Buffer.concat([PNG_SIGNATURE, pngChunk('IHDR', ihdr), pngChunk('IDAT', maskIdat(src, srcWidth, srcHeight, width, height)), pngChunk('IEND', new Uint8Array(0))]);
}
