// The segmentation pipeline (docs/architecture.md#request-data-flow): header → decode with shrink-on-load and
// resize → (next to the session:) normalise → run → argmax or threshold → class statistics →
// nearest-neighbour back to the image's size while writing the PNG (or RAW), every stage timed.
// Serving (gRPC) and evaluation (`segserve eval`) call this same code, so they cannot disagree.

import { SegserveError } from '@segserve/proto';
import { checkImage, segmentWorkBytes, type ImageLimits } from './domain/image-cost.js';
import { readImageHeader, type ImageHeader } from './domain/image-header.js';
import { classStatsResized, resizeNearest, type ClassStat } from './domain/mask.js';
import { encodeMaskPng } from './domain/mask-png.js';
import type { LoadedModel } from './domain/model.js';
import type { Stage, StageTimings } from './domain/stages.js';
import type { ClassMapOutput, ImageCodec, InferenceBackend, InferenceOutput } from './ports.js';

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

export interface PipelineOptions {
  readonly model: LoadedModel;
  readonly codec: ImageCodec;
  readonly backend: InferenceBackend;
  readonly limits: ImageLimits;
}

/** An upload whose header was read and accepted, with what running it will hold. */
export interface InspectedImage {
  readonly header: ImageHeader;
  /** Bytes held while it runs, beyond the upload itself (the admission charge's `work`). */
  readonly workBytes: number;
}

export class Pipeline {
  readonly model: LoadedModel;
  readonly #codec: ImageCodec;
  readonly #backend: InferenceBackend;
  readonly #limits: ImageLimits;
  readonly #input: { readonly width: number; readonly height: number };

  constructor(options: PipelineOptions) {
    this.model = options.model;
    this.#codec = options.codec;
    this.#backend = options.backend;
    this.#limits = options.limits;
    const [, , height, width] = this.model.input.shape as [number, number, number, number];
    this.#input = { width, height };
  }

  /**
   * The header alone, synchronously (format allowlist, animation, pixel and side limits) and
   * what the request will cost: cheap enough to run before admission.
   */
  inspect(image: Uint8Array): InspectedImage {
    const header = readImageHeader(image);
    checkImage(header, this.#limits, this.#input);
    return { header, workBytes: segmentWorkBytes(header, this.#input) };
  }

  async segment(image: Uint8Array, inspected: InspectedImage, maskFormat: MaskFormat, timer: StageTimer, signal?: AbortSignal): Promise<SegmentResult> {
    const { width, height } = this.#input;
    const { header } = inspected;
    let rgb: Uint8Array | undefined = await timer.time('decode', () => this.#codec.decodeResized(image, width, height));
    const rgbBytes = rgb.byteLength;
    let out: ClassMapOutput;
    try {
      signal?.throwIfAborted();
      out = await timer.time('infer', () => this.#backend.segment(rgb!, signal));
    } finally {
      // The backend has its own copy of the pixels by now: the decoded image is garbage, and the
      // codec is told so without a reference to it (see GarbageMeter, @segserve/runtime).
      rgb = undefined;
      this.#codec.dropped?.(rgbBytes);
    }
    // Waiting for a session is queueing; building the tensor and the argmax happen next to
    // the session and are reported as the stages they are.
    timer.move('infer', 'queue', out.waitedMs);
    timer.move('infer', 'preprocess', out.ms.preprocess);
    timer.move('infer', 'postprocess', out.ms.postprocess);
    signal?.throwIfAborted();
    // Served at the model's own size, the counts the worker took with the argmax are the mask's.
    const classes = await timer.time('postprocess', () => classStatsResized(out.classes, out.width, out.height, header.width, header.height, this.model.manifest.classes, out.counts));
    const mask = await timer.time('encode', () =>
      maskFormat === 'PNG' ? encodeMaskPng(out.classes, out.width, out.height, header.width, header.height) : rawMask(resizeNearest(out.classes, out.width, out.height, header.width, header.height)),
    );
    return { width: header.width, height: header.height, mask, maskFormat, classes };
  }

  /** Model runs still going whose callers have gone away. */
  get abandonedRuns(): number {
    return this.#backend.abandoned ?? 0;
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

const rawMask = (mask: Uint8Array): Buffer => Buffer.from(mask.buffer, mask.byteOffset, mask.byteLength);
