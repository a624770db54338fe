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
  const [t0, t1, t2] = tables;
  // Offsets of the source byte feeding tensor channels 0, 1, 2.
  const s0 = channelOrder === 'BGR' ? 2 : 0;
  const s2 = 2 - s0;
  for (let i = 0, p = 0; i < plane; i++, p += 3) {
    out[i] = t0[rgb[p + s0]!]!;
    out[plane + i] = t1[rgb[p + 1]!]!;
    out[2 * plane + i] = t2[rgb[p + s2]!]!;
  }
  return out;
}
