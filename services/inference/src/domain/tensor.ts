// Image pixels → the model's input tensor (docs/architecture.md#model-package): NCHW float32, value × scale, then
// (x − mean) / std per channel of the model's channel order. One pass over the pixels through a
// 256-entry table per channel, in a small WebAssembly kernel (no bounds checks, integer copies of
// the tables' float bits), writing straight into the tensor the runtime will read.

import { instantiate, op, wasmModule, type Code } from './wasm.js';

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

// The kernel: nchw(src, outR, outG, outB, tableR, tableG, tableB, pixels) — byte addresses of the
// interleaved RGB source, of the tensor plane and of the table for each source byte. Four pixels
// (three 32-bit words) per step, then one pixel at a time for the rest.
const [SRC, OUT_R, OUT_G, OUT_B, TAB_R, TAB_G, TAB_B, PIXELS, WORD_A, WORD_B, WORD_C, END] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11] as const;
const OUTS = [OUT_R, OUT_G, OUT_B] as const;
const TABS = [TAB_R, TAB_G, TAB_B] as const;
const WORDS = [WORD_A, WORD_B, WORD_C] as const;

/** Byte `k` of a little-endian word, times 4 (its table entry's offset). */
const byteTimes4 = (word: number, k: number): Code[] =>
  k === 0 ? [op.get(word), op.const(0xff), op.and, op.const(2), op.shl] : k === 3 ? [op.get(word), op.const(24), op.shrU, op.const(2), op.shl] : [op.get(word), op.const(8 * k - 2), op.shrU, op.const(0x3fc), op.and];

/** Advances each of `locals` by `by` bytes. */
const advance = (locals: readonly number[], by: number): Code[] => locals.flatMap((l) => [op.get(l), op.const(by), op.add, op.set(l)]);

const fourPixels: Code[] = [
  ...WORDS.flatMap((w, i) => [op.get(SRC), op.load(4 * i), op.set(w)]),
  ...Array.from({ length: 12 }, (_, q) => {
    const pixel = Math.floor(q / 3);
    const channel = q % 3;
    return [op.get(OUTS[channel]!), op.get(TABS[channel]!), ...byteTimes4(WORDS[q >> 2]!, q & 3), op.add, op.load(), op.store(4 * pixel)];
  }).flat(),
  ...advance([SRC], 12),
  ...advance(OUTS, 16),
];

const onePixel: Code[] = [
  ...[0, 1, 2].flatMap((channel) => [op.get(OUTS[channel]!), op.get(TABS[channel]!), op.get(SRC), op.load8(channel), op.const(2), op.shl, op.add, op.load(), op.store()]),
  ...advance([SRC], 3),
  ...advance(OUTS, 4),
];

/** `while (outR < end) { step }` */
const loopUntilEnd = (step: Code[]): Code[] => [op.block, op.loop, op.get(OUT_R), op.get(END), op.geU, op.brIf(1), ...step, op.br(0), op.end, op.end];
/** end = outR + 4 × (pixels & mask) */
const setEnd = (mask: number): Code[] => [op.get(OUT_R), op.get(PIXELS), op.const(mask), op.and, op.const(2), op.shl, op.add, op.set(END)];

const KERNEL = wasmModule([{ name: 'nchw', params: 8, locals: 4, body: [...setEnd(~3), ...loopUntilEnd(fourPixels), ...setEnd(3), ...loopUntilEnd(onePixel)] }]);

const TABLE_BYTES = 3 * 256 * 4;
const align64 = (n: number): number => Math.ceil(n / 64) * 64;

/**
 * Builds the input tensor of one model size in memory of its own: write the image's interleaved
 * RGB bytes (height × width × 3) into `rgb` (or pass them to `from`), and `build` writes planar
 * float32 (3 × height × width) into `tensor`. With `channelOrder` BGR, tensor channel 0 is blue.
 * Both views stay valid for the builder's life; `tensor` is overwritten by every build.
 */
export class TensorBuilder {
  readonly width: number;
  readonly height: number;
  readonly rgb: Uint8Array;
  readonly tensor: Float32Array;
  readonly #args: readonly number[];
  readonly #nchw: (...args: number[]) => void;

  constructor(width: number, height: number, normalization: Normalization) {
    this.width = width;
    this.height = height;
    const plane = width * height;
    const rgbAt = TABLE_BYTES;
    const tensorAt = align64(rgbAt + 3 * plane);
    const { memory, exports } = instantiate(KERNEL, tensorAt + 12 * plane);
    this.#nchw = exports['nchw']!;
    const tables = channelTables(normalization);
    new Float32Array(memory, 0, 3 * 256).set([...tables[0], ...tables[1], ...tables[2]]);
    this.rgb = new Uint8Array(memory, rgbAt, 3 * plane);
    this.tensor = new Float32Array(memory, tensorAt, 3 * plane);
    // The tensor channel (plane and table) of each source byte: red, green, blue.
    const bgr = normalization.channelOrder === 'BGR';
    const channels = bgr ? [2, 1, 0] : [0, 1, 2];
    this.#args = [rgbAt, ...channels.map((c) => tensorAt + 4 * c * plane), ...channels.map((c) => 1024 * c), plane];
  }

  /** The tensor of the pixels now in `rgb`. */
  build(): Float32Array {
    this.#nchw(...this.#args);
    return this.tensor;
  }

  /** Copies `rgb` in and builds. */
  from(rgb: Uint8Array): Float32Array {
    if (rgb.length !== this.rgb.length) throw new RangeError(`expected ${this.rgb.length} RGB bytes (${this.width}×${this.height}), got ${rgb.length}`);
    this.rgb.set(rgb);
    return this.build();
  }
}
