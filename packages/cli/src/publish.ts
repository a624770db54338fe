// `segserve publish`: upload a model version to `segserve_models`, then publish its signed
// ExperimentResult on `segserve.experiments.<model>` with `Nats-Msg-Id` = experiment id.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { KeyPair } from '@nats-io/nkeys';
import { headers, type NatsConnection } from '@nats-io/transport-node';
import { EXPERIMENT_HEADERS, NATS_NAMES, SegserveError, parseExperimentResult, type ExperimentBaseline, type ExperimentResult, type ModelManifest } from '@segserve/proto';
import { defaultExperimentId, defaultGoldenDir, ensureNatsObjects, ModelRegistry, signResult, type NatsLimits, type UploadProgress } from '@segserve/promoter';
import { goldenSetDigest } from '@segserve/runtime';

export interface PublishOptions {
  readonly nc: NatsConnection;
  /** A model version directory: model.onnx + model.json. */
  readonly modelDir: string;
  /** Claimed figures: a metrics object, or `{metrics, golden?: {sha256}, source?, id?, baseline?}` (`segserve eval --against --out`); default model.json `metrics`. */
  readonly resultFile?: string;
  /** Golden set whose digest goes into the result when the result file has none (default `<modelDir>/../<the newest set the model's policy accepts>`). */
  readonly goldenDir?: string;
  readonly id?: string;
  readonly key: KeyPair;
  readonly source: ExperimentResult['source'];
  readonly now: () => Date;
  readonly onProgress?: UploadProgress;
  readonly limits?: NatsLimits;
}

export interface Published {
  readonly result: ExperimentResult;
  readonly subject: string;
  readonly stream: string;
  readonly seq: number;
  /** JetStream had a message with this id inside its duplicate window: nothing new was stored. */
  readonly duplicate: boolean;
  /** model.onnx was sent (false: the store already had these bytes). */
  readonly uploaded: boolean;
}

interface ResultFile {
  readonly metrics: Record<string, number>;
  /** The second form (`segserve eval --against --out`): the stable measured in the same run. */
  readonly baseline?: ExperimentBaseline;
  readonly goldenSha256?: string;
  readonly source?: ExperimentResult['source'];
  readonly id?: string;
}

async function readResultFile(file: string): Promise<ResultFile> {
  let value: unknown;
  try {
    value = JSON.parse(await readFile(file, 'utf8'));
  } catch (err) {
    throw new SegserveError('INVALID_INPUT', `${file}: not a JSON file (${err instanceof Error ? err.message : String(err)})`);
  }
  if (!value || typeof value !== 'object' || Array.isArray(value)) throw new SegserveError('INVALID_INPUT', `${file}: expected a JSON object`);
  const obj = value as Record<string, unknown>;
  if (!('metrics' in obj)) return { metrics: obj as Record<string, number> };
  const golden = obj['golden'] as { sha256?: string } | undefined;
  return {
    metrics: obj['metrics'] as Record<string, number>,
    ...(golden?.sha256 ? { goldenSha256: golden.sha256 } : {}),
    ...(obj['source'] ? { source: obj['source'] as ExperimentResult['source'] } : {}),
    ...(typeof obj['id'] === 'string' ? { id: obj['id'] } : {}),
    ...(obj['baseline'] !== undefined ? { baseline: obj['baseline'] as ExperimentBaseline } : {}),
  };
}

/** A golden digest recorded by the training pipeline in model.json, if any. */
function manifestGoldenSha(manifest: ModelManifest): string | undefined {
  const training = manifest.training as { golden_sha256?: unknown; golden?: { sha256?: unknown } } | undefined;
  const sha = training?.golden_sha256 ?? training?.golden?.sha256;
  return typeof sha === 'string' ? sha : undefined;
}

export async function publishModel(o: PublishOptions): Promise<Published> {
  const objects = await ensureNatsObjects(o.nc, o.limits, { reconcile: false });
  const registry = new ModelRegistry(objects.models);
  const upload = await registry.upload(o.modelDir, o.onProgress);
  const file = o.resultFile ? await readResultFile(o.resultFile) : undefined;
  const metrics = file?.metrics ?? upload.manifest.metrics;
  if (!metrics || Object.keys(metrics).length === 0) {
    throw new SegserveError('INVALID_INPUT', `no claimed metrics: ${path.join(o.modelDir, 'model.json')} has none; pass --result <metrics.json>`);
  }
  const goldenDir = o.goldenDir ?? (await defaultGoldenDir(o.modelDir));
  const goldenSha256 =
    file?.goldenSha256 ??
    manifestGoldenSha(upload.manifest) ??
    (await goldenSetDigest(goldenDir).catch((err: unknown) => {
      throw new SegserveError('INVALID_INPUT', `no golden set digest: ${goldenDir} cannot be read; pass --golden <dir> or put golden.sha256 in the result file`, { cause: err });
    }));
  const content = {
    model: upload.manifest.name,
    version: upload.manifest.version,
    artifact: { sha256: upload.onnx.sha256, size: upload.onnx.size },
    metrics,
    ...(file?.baseline !== undefined ? { schema_version: 2 as const, baseline: file.baseline } : {}),
    golden: { sha256: goldenSha256 },
    source: file?.source ?? o.source,
  };
  const result = parseExperimentResult(
    { id: o.id ?? file?.id ?? defaultExperimentId(content), ...content, created_at: o.now().toISOString() },
    o.resultFile ?? path.join(o.modelDir, 'model.json'),
  );
  const signed = signResult(result, o.key);
  const h = headers();
  h.set(EXPERIMENT_HEADERS.signature, signed.signature);
  h.set(EXPERIMENT_HEADERS.signer, signed.signer);
  const subject = NATS_NAMES.experimentsSubject(result.model);
  const ack = await objects.js.publish(subject, JSON.stringify(result), { msgID: result.id, headers: h });
  return { result, subject, stream: ack.stream, seq: ack.seq, duplicate: ack.duplicate, uploaded: upload.onnx.uploaded };
}
