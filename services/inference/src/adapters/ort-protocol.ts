// Messages between the main thread and the onnxruntime worker threads. onnxruntime-node's
// run() is synchronous under its Promise (it blocks the thread it runs on for the whole
// inference), so sessions live in workers and the event loop stays free for gRPC, health
// checks and fast OVERLOADED answers. For Segment the worker also builds the input tensor from
// the decoded RGB bytes (into one tensor it reuses run after run) and reduces the logits to a
// class map, so that a request waiting for the session holds 3 bytes per model pixel instead
// of 12, and 1 byte per pixel comes back instead of 4 × classes. The RGB bytes go through memory
// each worker shares with the main thread (written when the request is dispatched to it), not
// through a copy in the message.

import type { SessionSettings } from '../config.js';
import type { OutputSpec } from '../domain/mask.js';
import type { GraphValue } from '../domain/model.js';
import type { Normalization } from '../domain/tensor.js';

/** How the worker turns RGB into the input tensor and logits into classes (Segment). */
export interface SegmentSpec {
  readonly normalization: Normalization;
  readonly output: OutputSpec;
}

export interface InitMessage {
  readonly type: 'init';
  readonly onnx: Uint8Array;
  readonly settings: SessionSettings;
  readonly io: { readonly inputName: string; readonly dims: readonly number[]; readonly outputName: string };
  readonly segment: SegmentSpec;
  /** Shared with the main thread: a Segment request's RGB bytes (model height × width × 3). */
  readonly rgb: Uint8Array;
}

/** A prepared input tensor; the raw output comes back (Open Inference Protocol). */
export interface RunMessage {
  readonly type: 'run';
  readonly id: number;
  readonly input: Float32Array;
}

/** Interleaved RGB at the model's input size, in the shared `rgb` of the init message; a class map comes back. */
export interface SegmentMessage {
  readonly type: 'segment';
  readonly id: number;
}

export type ToWorker = InitMessage | RunMessage | SegmentMessage;

/** Milliseconds spent in the worker: tensor building, the run, the reduction to classes. */
export interface WorkerTimings {
  readonly preprocess: number;
  readonly infer: number;
  readonly postprocess: number;
}

export type FromWorker =
  | { readonly type: 'ready'; readonly inputs: readonly GraphValue[]; readonly outputs: readonly GraphValue[] }
  | { readonly type: 'failed'; readonly message: string }
  | { readonly type: 'result'; readonly id: number; readonly data: Float32Array; readonly dims: readonly number[]; readonly ms: WorkerTimings }
  | { readonly type: 'classes'; readonly id: number; readonly classes: Uint8Array; readonly counts: Uint32Array; readonly width: number; readonly height: number; readonly ms: WorkerTimings }
  | { readonly type: 'error'; readonly id: number; readonly message: string };
