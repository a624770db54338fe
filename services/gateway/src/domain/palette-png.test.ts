import { describe, expect, it } from 'vitest';
import { inflateSync } from 'node:zlib';
import { classColor, encodePalettePng, encodePalettePngAsync, hexColor } from './palette-png.js';

/** Minimal PNG chunk reader, enough to check what we wrote. */
function chunks(png: Buffer): Map<string, Buffer> {
  expect(png.subarray(0, 8)).toEqual(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
  const out = new Map<string, Buffer>();
  let at = 8;
  while (at < png.length) {
    const len = png.readUInt32BE(at);
    const type = png.toString('ascii', at + 4, at + 8);
    out.set(type, Buffer.concat([out.get(type) ?? Buffer.alloc(0), png.subarray(at + 8, at + 8 + len)]));
    at += 12 + len;
  }
  return out;
}

describe('encodePalettePng', () => {
  it('writes an 8-bit palette PNG whose pixels are the class indices', () => {
    const raw = Uint8Array.from([0, 1, 1, 0, 2, 0]);
    const c = chunks(encodePalettePng(raw, 3, 2, 3));
    const ihdr = c.get('IHDR')!;
    expect([ihdr.readUInt32BE(0), ihdr.readUInt32BE(4), ihdr[8], ihdr[9]]).toEqual([3, 2, 8, 3]);
    expect(c.get('PLTE')).toEqual(Buffer.from([...classColor(0), ...classColor(1), ...classColor(2)]));
    expect(c.get('tRNS')).toEqual(Buffer.from([0, 255, 255]));
    const scanlines = inflateSync(c.get('IDAT')!);
    expect([...scanlines]).toEqual([0, 0, 1, 1, 0, 0, 2, 0]);
    expect(c.has('IEND')).toBe(true);
  });

  it('covers indices beyond the class count', () => {
    const c = chunks(encodePalettePng(Uint8Array.from([5]), 1, 1, 2));
    expect(c.get('PLTE')!.length).toBe(6 * 3);
  });

  it('rejects a mask of the wrong length', () => {
    expect(() => encodePalettePng(new Uint8Array(5), 3, 2, 2)).toThrow(RangeError);
  });
});

describe('encodePalettePngAsync', () => {
  it('writes the same PNG as the synchronous encoder, letting the event loop run meanwhile', async () => {
    const width = 2400;
    const height = 1700; // four slices of scanning and copying
    const raw = new Uint8Array(width * height);
    for (let i = 0; i < raw.length; i++) raw[i] = (i >> 12) % 3;
    raw[raw.length - 1] = 7; // an index beyond the class count, in the last slice
    let turns = 0;
    let counting = true;
    const count = (): void => {
      turns++;
      if (counting) setImmediate(count);
    };
    setImmediate(count);
    const png = await encodePalettePngAsync(raw, width, height, 3);
    counting = false;
    expect(png.equals(encodePalettePng(raw, width, height, 3))).toBe(true);
    expect(chunks(png).get('PLTE')!.length).toBe(8 * 3);
    // Other callbacks ran between the slices: the loop was never held for the whole mask.
    expect(turns).toBeGreaterThanOrEqual(8);
  });

  it('rejects a mask of the wrong length', async () => {
    await expect(encodePalettePngAsync(new Uint8Array(5), 3, 2, 2)).rejects.toThrow(RangeError);
  });

  it('gives stable, distinct colours', () => {
    const colours = new Set(Array.from({ length: 40 }, (_, i) => hexColor(classColor(i))));
    expect(colours.size).toBe(40);
    expect(hexColor(classColor(1))).toBe('#e6194b');
  });
});
