// The segmentation pipeline (DESIGN.md §3): decode → resize → normalise → run → argmax or
// threshold → nearest-neighbour back to the image's size → PNG or RAW, with every stage timed.
// Serving (gRPC) and evaluation (`segserve eval`) call this same code, so they cannot disagree.

import { classMap, classStatsResized, resizeNearest, type ClassStat } from './domain/mask.js';
import type { LoadedModel } from './domain/model.js';
import { toNchw } from './domain/tensor.js';
import type { Stage, StageTimings } from './domain/stages.js';
import type { ImageCodec, InferenceBackend, InferenceOutput, ProbedImage } from './ports.js';
import { SegserveError } from '@segserve/proto';

export type MaskFormat = 'PNG' | 'RAW';

export interface SegmentResult {
  readonly width: number;
  readonly height: number;
  /** PNG bytes, or width × height class indices for RAW. */
  readonly mask: Buffer;
  readonly maskFormat: MaskFormat;
  readonly classes: readonly ClassStat[];
}

/** Milliseconds per stage, accumulated; a stage that did not happen is absent. */
export class StageTimer {
  readonly ms: StageTimings = {};
  readonly #now: () => number;
  readonly #start: number;

  constructor(now: () => number = () => performance.now()) {
    this.#now = now;
    this.#start = now();
  }

  async time<T>(stage: Stage, fn: () => Promise<T> | T): Promise<T> {
    const t0 = this.#now();
    try {
      return await fn();
    } finally {
      this.ms[stage] = (this.ms[stage] ?? 0) + (this.#now() - t0);
    }
  }

  /** Re-attributes time measured under one stage to another (a wait inside a stage). */
  move(from: Stage, to: Stage, ms: number): void {
    if (!(ms > 0)) return;
    const taken = Math.min(ms, this.ms[from] ?? 0);
    this.ms[from] = (this.ms[from] ?? 0) - taken;
    this.ms[to] = (this.ms[to] ?? 0) + taken;
  }

  /** Stamps and returns the total since construction. */
  finish(): StageTimings {
    this.ms.total = this.#now() - this.#start;
    return this.ms;
  }
}

export class Pipeline {
  readonly model: LoadedModel;
  readonly #codec: ImageCodec;
  readonly #backend: InferenceBackend;

  constructor(options: { model: LoadedModel; codec: ImageCodec; backend: InferenceBackend }) {
    this.model = options.model;
    this.#codec = options.codec;
    this.#backend = options.backend;
  }

  /** Header checks only (format allowlist, pixel limit): cheap enough to run before queueing. */
  probe(image: Uint8Array, timer: StageTimer): Promise<ProbedImage> {
    return timer.time('decode', () => this.#codec.probe(image));
  }

  async segment(image: Uint8Array, probed: ProbedImage, maskFormat: MaskFormat, timer: StageTimer, signal?: AbortSignal): Promise<SegmentResult> {
    const [, , height, width] = this.model.input.shape as [number, number, number, number];
    const rgb = await timer.time('decode', () => this.#codec.decodeResized(image, width, height));
    signal?.throwIfAborted();
    const tensor = await timer.time('preprocess', () => toNchw(rgb, width, height, this.model.tables, this.model.normalization.channelOrder));
    const output = await timer.time('infer', () => this.#backend.run(tensor, signal));
    // Waiting for a session (fewer sessions than requests inside) is queueing, not inference.
    timer.move('infer', 'queue', output.waitedMs ?? 0);
    signal?.throwIfAborted();
    const { mask, classes } = await timer.time('postprocess', () => {
      const [, channels, oh, ow] = this.#outputDims(output);
      const small = classMap(output.data, channels, oh * ow, this.model.outputSpec);
      return {
        mask: resizeNearest(small, ow, oh, probed.width, probed.height),
        classes: classStatsResized(small, ow, oh, probed.width, probed.height, this.model.manifest.classes),
      };
    });
    const bytes = await timer.time('encode', () =>
      maskFormat === 'PNG' ? this.#codec.encodeMask(mask, probed.width, probed.height) : Buffer.from(mask.buffer, mask.byteOffset, mask.byteLength),
    );
    return { width: probed.width, height: probed.height, mask: bytes, maskFormat, classes };
  }

  /** The raw model output for an already-built input tensor (Open Inference Protocol). */
  async infer(tensor: Float32Array, timer: StageTimer, signal?: AbortSignal): Promise<InferenceOutput> {
    const out = await timer.time('infer', () => this.#backend.run(tensor, signal));
    timer.move('infer', 'queue', out.waitedMs ?? 0);
    this.#outputDims(out);
    return out;
  }

  #outputDims(out: InferenceOutput): [number, number, number, number] {
    const d = out.dims;
    if (d.length !== 4 || d[0] !== 1 || d[1] !== this.model.output.channels || out.data.length !== d.reduce((a, b) => a * b, 1)) {
      throw new SegserveError('INTERNAL', 'internal error', { cause: new Error(`model output has dims [${d.join(',')}], expected [1,${this.model.output.channels},H,W]`) });
    }
    return d as [number, number, number, number];
  }
}
