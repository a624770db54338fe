// Fetch → verify → load → check the graph against model.json → warm up. Only a model that went
// through all of it is ever served (RELIABILITY.md 20).

import { describeModel, type LoadedModel, type ModelArtifact } from './domain/model.js';
import { Pipeline } from './pipeline.js';
import type { ImageCodec, InferenceBackend, ModelStore } from './ports.js';

export type BackendFactory = (artifact: ModelArtifact) => Promise<InferenceBackend>;

export interface LoadedPipeline {
  readonly pipeline: Pipeline;
  readonly model: LoadedModel;
  readonly backend: InferenceBackend;
  /** Fetch + verify + session creation + warm-up, seconds. */
  readonly loadSeconds: number;
}

export async function loadPipeline(options: { store: ModelStore; createBackend: BackendFactory; codec: ImageCodec; now?: () => number }): Promise<LoadedPipeline> {
  const now = options.now ?? (() => performance.now());
  const t0 = now();
  const artifact = await options.store.load();
  const backend = await options.createBackend(artifact);
  try {
    const model = describeModel(artifact, backend.inputs, backend.outputs);
    const elements = model.input.shape.reduce((a, b) => a * b, 1);
    await backend.warmUp(() => new Float32Array(elements));
    return { pipeline: new Pipeline({ model, codec: options.codec, backend }), model, backend, loadSeconds: (now() - t0) / 1000 };
  } catch (err) {
    await backend.close();
    throw err;
  }
}
