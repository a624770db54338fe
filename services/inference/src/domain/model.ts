// A model version as the service uses it: the validated manifest, its verified digest, and the
// tensor contract checked against what onnxruntime reports for the graph (docs/architecture.md#model-package).

import { parseModelManifest, type ModelManifest } from '@segserve/proto';
import { createHash } from 'node:crypto';
import type { OutputSpec } from './mask.js';
import type { TensorSpec } from './oip.js';
import { channelTables, type ChannelTables, type Normalization } from './tensor.js';

export type ModelLoadReason = 'missing' | 'invalid_manifest' | 'digest_mismatch' | 'incompatible' | 'runtime';

/** Why a model version cannot be served; the process stays NOT_SERVING and says this. */
export class ModelLoadError extends Error {
  readonly reason: ModelLoadReason;

  constructor(reason: ModelLoadReason, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ModelLoadError';
    this.reason = reason;
  }
}

/** The two objects of a model version, as fetched by a ModelStore. */
export interface ModelArtifact {
  readonly manifest: ModelManifest;
  readonly onnx: Uint8Array;
  readonly sha256: string;
  /** Where it came from, for logs (a path or an object-store key). */
  readonly location: string;
}

export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/**
 * Validates model.json and checks model.onnx against its digest (and against a digest pinned by
 * the deployment, when given). Hashes the very bytes that will be loaded, so there is no window
 * between check and use.
 */
export function verifyArtifact(manifestJson: unknown, onnx: Uint8Array, location: string, pinned?: string): ModelArtifact {
  let manifest: ModelManifest;
  try {
    manifest = parseModelManifest(manifestJson, `${location}/model.json`);
  } catch (err) {
    throw new ModelLoadError('invalid_manifest', err instanceof Error ? err.message : String(err), { cause: err });
  }
  const actual = sha256Hex(onnx);
  if (actual !== manifest.sha256) {
    throw new ModelLoadError('digest_mismatch', `${location}/model.onnx has sha256 ${actual} but model.json says ${manifest.sha256}`);
  }
  if (pinned !== undefined && pinned !== actual) {
    throw new ModelLoadError('digest_mismatch', `${location}/model.onnx has sha256 ${actual} but SEGSERVE_MODEL_SHA256 is ${pinned}`);
  }
  return { manifest, onnx, sha256: actual, location };
}

/** A graph input or output as onnxruntime reports it; symbolic dims are strings. */
export interface GraphValue {
  readonly name: string;
  readonly type: string;
  readonly shape: readonly (number | string)[];
}

export interface LoadedModel {
  readonly manifest: ModelManifest;
  readonly sha256: string;
  readonly name: string;
  readonly version: string;
  readonly input: TensorSpec;
  readonly output: { readonly name: string; readonly channels: number; readonly shape: readonly number[] };
  readonly normalization: Normalization;
  readonly tables: ChannelTables;
  readonly outputSpec: OutputSpec;
}

/** How the onnxruntime worker builds a Segment input and reduces its output (model.json alone). */
export function segmentSpec(m: ModelManifest): { normalization: Normalization; output: OutputSpec } {
  return {
    normalization: { mean: m.input.mean, std: m.input.std, scale: m.input.scale, channelOrder: m.input.channel_order ?? 'RGB' },
    output: { kind: m.output.kind, threshold: m.output.threshold ?? 0.5 },
  };
}

/** Checks the manifest against the graph and derives what the pipeline needs. */
export function describeModel(artifact: Pick<ModelArtifact, 'manifest' | 'sha256'>, inputs: readonly GraphValue[], outputs: readonly GraphValue[]): LoadedModel {
  const m = artifact.manifest;
  const bad = (message: string): ModelLoadError => new ModelLoadError('incompatible', `${m.name}/${m.version}: ${message}`);
  if (inputs.length !== 1) throw bad(`the graph has ${inputs.length} inputs; exactly 1 is supported`);
  const gi = inputs[0]!;
  if (gi.name !== m.input.name) throw bad(`model.json input '${m.input.name}' but the graph's input is '${gi.name}'`);
  if (gi.type !== 'float32') throw bad(`input '${gi.name}' is ${gi.type}, not float32`);
  const want = [1, 3, m.input.height, m.input.width];
  // Symbolic dims (e.g. a dynamic batch) accept the manifest's fixed size.
  if (gi.shape.length !== 4 || gi.shape.some((d, i) => typeof d === 'number' && d !== want[i])) {
    throw bad(`input shape [${gi.shape.join(',')}] does not match model.json [${want.join(',')}]`);
  }
  const go = outputs.find((o) => o.name === m.output.name);
  if (!go) throw bad(`model.json output '${m.output.name}' is not among the graph's outputs (${outputs.map((o) => o.name).join(', ')})`);
  if (go.type !== 'float32') throw bad(`output '${go.name}' is ${go.type}, not float32`);
  if (go.shape.length !== 4) throw bad(`output '${go.name}' has rank ${go.shape.length}; [1, C, H, W] expected`);
  const c = go.shape[1];
  if (typeof c !== 'number') throw bad(`output '${go.name}' has a symbolic channel dimension`);
  const single = m.output.kind === 'sigmoid' || (m.output.kind === 'probabilities' && c === 1);
  if (m.output.kind === 'sigmoid' && c !== 1) throw bad(`a sigmoid output has 1 channel; the graph's '${go.name}' has ${c}`);
  if (single ? m.classes.length !== 2 : c !== m.classes.length) {
    throw bad(`output '${go.name}' has ${c} channel(s) but model.json lists ${m.classes.length} classes (kind ${m.output.kind})`);
  }
  const { normalization, output: outputSpec } = segmentSpec(m);
  return {
    manifest: m,
    sha256: artifact.sha256,
    name: m.name,
    version: m.version,
    input: { name: gi.name, shape: want },
    output: { name: go.name, channels: c, shape: go.shape.map((d) => (typeof d === 'number' ? d : -1)) },
    normalization,
    tables: channelTables(normalization),
    outputSpec,
  };
}
