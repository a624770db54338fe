// Fetch → verify → load → check the graph against model.json → warm up. Only a model that went
// through all of it is ever served (docs/reliability.md item 20).

import { describeModel, type LoadedModel, type ModelArtifact } from './domain/model.js';
import { Pipeline } from './pipeline.js';
import type { ImageLimits } from './domain/image-cost.js';
import type { ImageCodec, InferenceBackend, ModelStore } from './ports.js';

export type BackendFactory = (artifact: ModelArtifact) => Promise<InferenceBackend>;

export interface LoadedPipeline {
  readonly pipeline: Pipeline;
  readonly model: LoadedModel;
  readonly backend: InferenceBackend;
  /** Fetch + verify + session creation + warm-up, seconds. */
  readonly loadSeconds: number;
}

export interface LoadOptions {
  readonly store: ModelStore;
  readonly createBackend: BackendFactory;
  readonly codec: ImageCodec;
  readonly limits: ImageLimits;
  /** Called between session creation and the warm-up run (memory is measured around it). */
  readonly beforeWarmUp?: () => void;
  readonly now?: () => number;
}

export async function loadPipeline(options: LoadOptions): Promise<LoadedPipeline> {
  const now = options.now ?? (() => performance.now());
  const t0 = now();
  const artifact = await options.store.load();
  const backend = await options.createBackend(artifact);
  try {
    const model = describeModel(artifact, backend.inputs, backend.outputs);
    options.beforeWarmUp?.();
    await backend.warmUp();
    return { pipeline: new Pipeline({ model, codec: options.codec, backend, limits: options.limits }), model, backend, loadSeconds: (now() - t0) / 1000 };
  } catch (err) {
    await backend.close();
    throw err;
  }
}
