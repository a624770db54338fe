import { describe, expect, it } from 'vitest';
import { crc32, deflateSync } from 'node:zlib';
import { PNG_SIGNATURE, pngChunk, pngHeader, readPngChunks } from './png.js';

const greyPng = (w: number, h: number, rows: number[][]): Buffer =>
  Buffer.concat([
    PNG_SIGNATURE,
    pngChunk('IHDR', pngHeader(w, h, 8, 0)),
    pngChunk('IDAT', deflateSync(Buffer.from(rows.flatMap((r) => [0, ...r])))),
    pngChunk('IEND', new Uint8Array(0)),
  ]);

describe('pngChunk', () => {
  it('writes length, type, data and the CRC of type and data', () => {
    const c = pngChunk('tEXt', Buffer.from('a=b'));
    expect(c.readUInt32BE(0)).toBe(3);
    expect(c.toString('latin1', 4, 8)).toBe('tEXt');
    expect(c.toString('latin1', 8, 11)).toBe('a=b');
    expect(c.readUInt32BE(11)).toBe(crc32(Buffer.from('tEXta=b')) >>> 0);
  });

  it('refuses a type that is not four letters', () => {
    expect(() => pngChunk('ID', new Uint8Array(0))).toThrow(RangeError);
  });

});

describe('readPngChunks', () => {
  it('lists the chunks up to IEND', () => {
    const png = greyPng(2, 1, [[5, 6]]);
    const chunks = readPngChunks(png);
    expect(chunks.map((c) => c.type)).toEqual(['IHDR', 'IDAT', 'IEND']);
    expect(Buffer.from(chunks[0]!.data)).toEqual(Buffer.from(pngHeader(2, 1, 8, 0)));
    expect(Buffer.concat(chunks.map((c) => c.raw))).toEqual(png.subarray(8));
  });

  it.each([
    ['no signature', Buffer.from('GIF89a........')],
    ['a chunk past the end', Buffer.concat([PNG_SIGNATURE, pngChunk('IHDR', pngHeader(1, 1, 8, 0)).subarray(0, 20)])],
    ['no IEND', Buffer.concat([PNG_SIGNATURE, pngChunk('IHDR', pngHeader(1, 1, 8, 0))])],
  ])('refuses %s', (_what, png) => {
    expect(() => readPngChunks(png)).toThrow(RangeError);
  });
});
