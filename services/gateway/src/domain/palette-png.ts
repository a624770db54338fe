// `?format=color`: a class-index mask as an 8-bit palette PNG that people can look at, with
// class 0 (background) transparent so it can lie over the photo. Encoding only (zlib), no
// decoding: the upstream sends the RAW mask (width × height class indices) for this case.
import { promisify } from 'node:util';
import { crc32, deflate, deflateSync } from 'node:zlib';

const deflateAsync = promisify(deflate);

export type Rgb = readonly [number, number, number];

// Distinct, colour-blind-friendlier colours first (Okabe–Ito, then Tol's bright); beyond them a
// deterministic spread. Index 0 is background and transparent in the PNG.
const BASE_PALETTE: readonly Rgb[] = [
  [0, 0, 0],
  [230, 25, 75],
  [0, 114, 178],
  [230, 159, 0],
  [0, 158, 115],
  [204, 121, 167],
  [86, 180, 233],
  [213, 94, 0],
  [240, 228, 66],
  [102, 204, 238],
  [34, 136, 51],
  [170, 51, 119],
];

/** The display colour of class `index` (stable across requests, models and the upload page). */
export function classColor(index: number): Rgb {
  const base = BASE_PALETTE[index];
  if (base) return base;
  // Golden-angle hue walk: neighbouring indices get far-apart hues.
  const hue = (index * 137.508) % 360;
  return hslToRgb(hue, 0.65, 0.5);
}

export function hexColor(rgb: Rgb): string {
  return `#${rgb.map((c) => c.toString(16).padStart(2, '0')).join('')}`;
}

function hslToRgb(h: number, s: number, l: number): Rgb {
  const a = s * Math.min(l, 1 - l);
  const f = (n: number): number => {
    const k = (n + h / 30) % 12;
    return Math.round(255 * (l - a * Math.max(-1, Math.min(k - 3, 9 - k, 1))));
  };
  return [f(0), f(8), f(4)];
}

function chunk(type: string, data: Uint8Array): Buffer {
  const head = Buffer.alloc(8);
  head.writeUInt32BE(data.length, 0);
  head.write(type, 4, 'ascii');
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(data, crc32(head.subarray(4))) >>> 0, 0);
  return Buffer.concat([head, data, crc]);
}

const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

/** Palette entries a mask needs: `classCount`, or more if an index beyond it occurs. */
function paletteEntries(raw: Uint8Array, start: number, end: number, atLeast: number): number {
  let max = atLeast - 1;
  for (let i = start; i < end; i++) if (raw[i]! > max) max = raw[i]!;
  return max + 1;
}

function checkSize(raw: Uint8Array, width: number, height: number): void {
  if (!Number.isInteger(width) || !Number.isInteger(height) || width <= 0 || height <= 0) throw new RangeError(`bad mask size ${width}×${height}`);
  if (raw.length !== width * height) throw new RangeError(`mask has ${raw.length} bytes, expected ${width}×${height}`);
}

/** Filter type 0 (None) per scanline, rows [from, to): class masks are long runs, which deflate handles well. */
function copyScanlines(raw: Uint8Array, width: number, scanlines: Buffer, from: number, to: number): void {
  for (let y = from; y < to; y++) scanlines.set(raw.subarray(y * width, (y + 1) * width), y * (width + 1) + 1);
}

function assemble(width: number, height: number, entries: number, idat: Uint8Array): Buffer {
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 3; // colour type: palette
  // compression, filter, interlace: 0
  const plte = Buffer.alloc(entries * 3);
  const trns = Buffer.alloc(entries, 255);
  for (let i = 0; i < entries; i++) plte.set(classColor(i), i * 3);
  trns[0] = 0;
  return Buffer.concat([PNG_SIGNATURE, chunk('IHDR', ihdr), chunk('PLTE', plte), chunk('tRNS', trns), chunk('IDAT', idat), chunk('IEND', new Uint8Array(0))]);
}

const DEFLATE_LEVEL = 6;

/**
 * Encodes a RAW class-index mask (row-major uint8, `width × height` bytes) as a palette PNG
 * with `classCount` entries (at least every index that occurs must be < 256). Synchronous: for
 * small masks only (the class-name probe, tests); requests use encodePalettePngAsync.
 */
export function encodePalettePng(raw: Uint8Array, width: number, height: number, classCount: number): Buffer {
  checkSize(raw, width, height);
  const scanlines = Buffer.alloc((width + 1) * height);
  copyScanlines(raw, width, scanlines, 0, height);
  return assemble(width, height, paletteEntries(raw, 0, raw.length, Math.max(classCount, 1)), deflateSync(scanlines, { level: DEFLATE_LEVEL }));
}

/** Bytes of mask handled between two turns of the event loop. */
const SLICE_BYTES = 1 << 20;

const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/**
 * The same PNG without holding the event loop (issue 11: a 4898×4898 mask took a second of it):
 * the mask is scanned and copied a megabyte at a time between turns of the loop, and deflated
 * on libuv's thread pool.
 */
export async function encodePalettePngAsync(raw: Uint8Array, width: number, height: number, classCount: number): Promise<Buffer> {
  checkSize(raw, width, height);
  let entries = Math.max(classCount, 1);
  for (let start = 0; start < raw.length; start += SLICE_BYTES) {
    entries = paletteEntries(raw, start, Math.min(raw.length, start + SLICE_BYTES), entries);
    await nextTurn();
  }
  const scanlines = Buffer.alloc((width + 1) * height);
  const rows = Math.max(1, Math.floor(SLICE_BYTES / width));
  for (let y = 0; y < height; y += rows) {
    copyScanlines(raw, width, scanlines, y, Math.min(height, y + rows));
    await nextTurn();
  }
  const idat = await deflateAsync(scanlines, { level: DEFLATE_LEVEL });
  return assemble(width, height, entries, idat);
}
