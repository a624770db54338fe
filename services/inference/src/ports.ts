// The boundaries of the service (STYLE.md "Small interfaces at the boundaries"): where model
// versions come from, what runs a tensor, and what decodes and encodes images. main.ts picks the
// implementations; the pipeline and the gRPC layer see only these.

import type { GraphValue, ModelArtifact } from './domain/model.js';
import type { ImageFormat } from './domain/image-format.js';

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

export interface InferenceBackend {
  readonly inputs: readonly GraphValue[];
  readonly outputs: readonly GraphValue[];
  /**
   * Runs the graph on one input tensor, which the backend takes over (it may be detached).
   * An abort while the input still waits for a session withdraws it (rejecting with the
   * signal's reason); a run that has started cannot be interrupted.
   */
  run(input: Float32Array, signal?: AbortSignal): Promise<InferenceOutput>;
  /** One run on every session, so that each has allocated and tuned before traffic. */
  warmUp(makeInput: () => Float32Array): Promise<void>;
  close(): Promise<void>;
}

export interface ProbedImage {
  readonly format: ImageFormat;
  /** Size after EXIF orientation: the size of the mask we return. */
  readonly width: number;
  readonly height: number;
}

export interface ImageCodec {
  /** Format and size from the header alone; rejects what must never be decoded. */
  probe(bytes: Uint8Array): Promise<ProbedImage>;
  /** Decodes, applies EXIF orientation and resizes to width × height: interleaved RGB bytes. */
  decodeResized(bytes: Uint8Array, width: number, height: number): Promise<Uint8Array>;
  /** A one-channel 8-bit PNG of the mask. */
  encodeMask(mask: Uint8Array, width: number, height: number): Promise<Buffer>;
}
