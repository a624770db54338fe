// The boundaries of the service (small interfaces at the boundaries: docs/architecture.md#conventions): where model
// versions come from, what runs a tensor, and what decodes and encodes images. main.ts picks the
// implementations; the pipeline and the gRPC layer see only these.

import type { GraphValue, ModelArtifact } from './domain/model.js';

export interface ModelStore {
  /** Where models come from, for logs. */
  readonly location: string;
  /** Fetches and verifies one model version; throws ModelLoadError. */
  load(): Promise<ModelArtifact>;
  close(): Promise<void>;
}

export interface InferenceOutput {
  readonly data: Float32Array;
  readonly dims: readonly number[];
  /** Time the input waited for a free session before its run (reported as the 'queue' stage). */
  readonly waitedMs?: number;
}

/** A Segment run: the class map at the model's output size, and where the time went. */
export interface ClassMapOutput {
  readonly classes: Uint8Array;
  /** Pixels of each class in `classes` (index = class), counted with the map. */
  readonly counts: Uint32Array;
  readonly width: number;
  readonly height: number;
  /** Time the input waited for a free session before its run (reported as the 'queue' stage). */
  readonly waitedMs: number;
  /** Tensor building, the run and the reduction to classes, measured where they ran. */
  readonly ms: { readonly preprocess: number; readonly infer: number; readonly postprocess: number };
}

export interface InferenceBackend {
  readonly inputs: readonly GraphValue[];
  readonly outputs: readonly GraphValue[];
  /**
   * Runs the graph on one input tensor, which the backend takes over (it may be detached).
   * An abort while the input still waits for a session withdraws it (rejecting with the
   * signal's reason); a run that has started cannot be interrupted, but its caller is
   * answered at once.
   */
  run(input: Float32Array, signal?: AbortSignal): Promise<InferenceOutput>;
  /**
   * Segment's run: interleaved RGB at the model's input size in, class map out (the tensor is
   * built and the logits reduced next to the session). Aborts as for run(); an abort while the
   * run goes on answers at once and the run's result is dropped.
   */
  segment(rgb: Uint8Array, signal?: AbortSignal): Promise<ClassMapOutput>;
  /** One run on every session, so that each has allocated and tuned before traffic. */
  warmUp(): Promise<void>;
  /** Runs still going whose callers have gone away (their sessions are busy for nobody). */
  readonly abandoned?: number;
  close(): Promise<void>;
}

export interface ImageCodec {
  /**
   * Decodes (shrinking on load where the format allows), applies EXIF orientation and resizes
   * to width × height: interleaved RGB bytes. Only called on an image whose header was read.
   */
  decodeResized(bytes: Uint8Array, width: number, height: number): Promise<Uint8Array>;
  /**
   * Told, once its caller holds no reference any more, the size of a buffer decodeResized returned
   * (a codec whose buffers only a garbage collection frees can collect).
   */
  dropped?(bytes: number): void;
}
