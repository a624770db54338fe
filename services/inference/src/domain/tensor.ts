// Image pixels → the model's input tensor (docs/architecture.md#model-package): NCHW float32, value × scale, then
// (x − mean) / std per channel of the model's channel order. One pass over the pixels through a
// 256-entry table per channel, writing straight into the tensor the runtime will read.

export interface Normalization {
  /** Per channel of the model's input tensor, i.e. in `channelOrder`. */
  readonly mean: readonly [number, number, number];
  readonly std: readonly [number, number, number];
  readonly scale: number;
  readonly channelOrder: 'RGB' | 'BGR';
}

export type ChannelTables = readonly [Float32Array, Float32Array, Float32Array];

/** table[c][v] = (v × scale − mean[c]) / std[c], computed in float64 and rounded once. */
export function channelTables(n: Normalization): ChannelTables {
  const make = (c: 0 | 1 | 2): Float32Array => {
    const t = new Float32Array(256);
    for (let v = 0; v < 256; v++) t[v] = (v * n.scale - n.mean[c]) / n.std[c];
    return t;
  };
  return [make(0), make(1), make(2)];
}

/**
 * Interleaved RGB bytes (height × width × 3) → planar float32 (3 × height × width). With
 * `channelOrder` BGR, tensor channel 0 is blue. `out` lets a caller reuse a buffer.
 */
export function toNchw(
  rgb: Uint8Array,
  width: number,
  height: number,
  tables: ChannelTables,
  channelOrder: 'RGB' | 'BGR',
  out: Float32Array = new Float32Array(3 * width * height),
): Float32Array {
  const plane = width * height;
  if (rgb.length !== plane * 3) throw new RangeError(`expected ${plane * 3} RGB bytes, got ${rgb.length}`);
  if (out.length !== plane * 3) throw new RangeError(`expected an output of ${plane * 3} floats, got ${out.length}`);
  // The tensor plane and table of each source byte: red, green, blue.
  const red = channelOrder === 'BGR' ? 2 : 0;
  const blue = channelOrder === 'BGR' ? 0 : 2;
  const oR = out.subarray(red * plane, (red + 1) * plane);
  const oG = out.subarray(plane, 2 * plane);
  const oB = out.subarray(blue * plane, (blue + 1) * plane);
  const tR = tables[red];
  const tG = tables[1];
  const tB = tables[blue];
  let i = 0;
  if ((rgb.byteOffset & 3) === 0 && LITTLE_ENDIAN) {
    // Four pixels from three 32-bit words: one load for every four bytes instead of four.
    const words = new Uint32Array(rgb.buffer, rgb.byteOffset, (plane * 3) >>> 2);
    for (let w = 0, end = plane - 3; i < end; i += 4, w += 3) {
      const a = words[w]!; // r0 g0 b0 r1
      const b = words[w + 1]!; // g1 b1 r2 g2
      const c = words[w + 2]!; // b2 r3 g3 b3
      oR[i] = tR[a & 0xff]!;
      oG[i] = tG[(a >>> 8) & 0xff]!;
      oB[i] = tB[(a >>> 16) & 0xff]!;
      oR[i + 1] = tR[a >>> 24]!;
      oG[i + 1] = tG[b & 0xff]!;
      oB[i + 1] = tB[(b >>> 8) & 0xff]!;
      oR[i + 2] = tR[(b >>> 16) & 0xff]!;
      oG[i + 2] = tG[b >>> 24]!;
      oB[i + 2] = tB[c & 0xff]!;
      oR[i + 3] = tR[(c >>> 8) & 0xff]!;
      oG[i + 3] = tG[(c >>> 16) & 0xff]!;
      oB[i + 3] = tB[c >>> 24]!;
    }
  }
  for (let p = i * 3; i < plane; i++, p += 3) {
    oR[i] = tR[rgb[p]!]!;
    oG[i] = tG[rgb[p + 1]!]!;
    oB[i] = tB[rgb[p + 2]!]!;
  }
  return out;
}

const LITTLE_ENDIAN = new Uint8Array(Uint32Array.of(1).buffer)[0] === 1;
