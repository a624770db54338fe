import { describe, expect, it } from 'vitest';
import { sniffImage } from './image-sniff.js';

const bytes = (...parts: Array<string | number[]>): Uint8Array => Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'latin1') : Buffer.from(p))));

describe('sniffImage', () => {
  it.each([
    ['JPEG', bytes([0xff, 0xd8, 0xff, 0xe0, 0, 0x10]), { kind: 'image', format: 'jpeg' }],
    ['PNG', bytes([0x89], 'PNG\r\n\x1a\n', [0, 0, 0, 13]), { kind: 'image', format: 'png' }],
    ['WebP', bytes('RIFF', [1, 2, 3, 4], 'WEBPVP8 '), { kind: 'image', format: 'webp' }],
    ['GIF', bytes('GIF89a', [1, 0, 1, 0]), { kind: 'rejected', format: 'GIF' }],
    ['TIFF little-endian', bytes([0x49, 0x49, 0x2a, 0x00, 8, 0, 0, 0]), { kind: 'rejected', format: 'TIFF' }],
    ['TIFF big-endian', bytes([0x4d, 0x4d, 0x00, 0x2a, 0, 0, 0, 8]), { kind: 'rejected', format: 'TIFF' }],
    ['PDF', bytes('%PDF-1.7\n%\xe2\xe3\xcf\xd3\n'), { kind: 'rejected', format: 'PDF' }],
    ['SVG', bytes('<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg"/>'), { kind: 'rejected', format: 'SVG/XML/HTML' }],
    ['SVG with BOM and whitespace', bytes([0xef, 0xbb, 0xbf], '  \n<svg/>'), { kind: 'rejected', format: 'SVG/XML/HTML' }],
    ['plain text', bytes('hello, this is not an image\n'), { kind: 'rejected', format: 'text' }],
    ['RIFF but WAVE', bytes('RIFF', [1, 2, 3, 4], 'WAVEfmt '), { kind: 'unknown' }],
    ['random binary', bytes([0x00, 0x01, 0x02, 0xfe]), { kind: 'unknown' }],
    ['empty', bytes(), { kind: 'unknown' }],
    ['truncated JPEG is still JPEG (inference judges it)', bytes([0xff, 0xd8, 0xff]), { kind: 'image', format: 'jpeg' }],
  ])('%s', (_name, input, expected) => {
    expect(sniffImage(input)).toEqual(expected);
  });
});
