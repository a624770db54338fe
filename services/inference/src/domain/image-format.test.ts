import { describe, expect, it } from 'vitest';
import { sniffImageFormat } from './image-format.js';

const bytes = (...parts: (number[] | string)[]): Uint8Array =>
  Uint8Array.from(parts.flatMap((p) => (typeof p === 'string' ? [...p].map((ch) => ch.charCodeAt(0)) : p)));

describe('sniffImageFormat', () => {
  it.each<[string, Uint8Array, string | undefined]>([
    ['JPEG', bytes([0xff, 0xd8, 0xff, 0xe0]), 'jpeg'],
    ['PNG', bytes([0x89], 'PNG', [0x0d, 0x0a, 0x1a, 0x0a]), 'png'],
    ['WebP', bytes('RIFF', [1, 2, 3, 4], 'WEBPVP8 '), 'webp'],
    ['RIFF but WAVE', bytes('RIFF', [1, 2, 3, 4], 'WAVEfmt '), undefined],
    ['GIF', bytes('GIF89a'), undefined],
    ['SVG', bytes('<svg xmlns="http://www.w3.org/2000/svg"/>'), undefined],
    ['PDF', bytes('%PDF-1.7'), undefined],
    ['TIFF', bytes('II*', [0]), undefined],
    ['text', bytes('hello'), undefined],
    ['empty', bytes(), undefined],
    ['2 bytes of JPEG', bytes([0xff, 0xd8]), undefined],
  ])('%s → %s', (_name, input, expected) => {
    expect(sniffImageFormat(input)).toBe(expected);
  });
});
