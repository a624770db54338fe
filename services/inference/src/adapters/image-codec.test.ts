import { describe, expect, it } from 'vitest';
import { SharpCodec } from './image-codec.js';

describe('SharpCodec.dropped', () => {
  it('hands the size of each dropped decoded image to its garbage meter', () => {
    const seen: number[] = [];
    const codec = new SharpCodec({ maxInputPixels: 1e6, garbage: { dropped: (bytes) => seen.push(bytes) } });
    codec.dropped(2_654_208);
    codec.dropped(165_888);
    expect(seen).toEqual([2_654_208, 165_888]);
  });
});
