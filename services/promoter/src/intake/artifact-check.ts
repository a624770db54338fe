// Intake step "artifact present and digest matches" (docs/architecture.md#promotion, docs/reliability.md item 26): the
// result's model.onnx must be in `segserve_models` with the claimed size and sha256 — hashed
// here while streaming, not taken from the store's metadata — and its model.json must be valid
// and name the same model, version and digest.
import { SegserveError, type ExperimentResult, type ModelManifest } from '@segserve/proto';
import type { ModelRegistry } from '../adapters/object-store.js';
import type { Checked } from '../domain/experiment-result.js';

function reject(code: 'artifact_missing' | 'artifact_size_mismatch' | 'artifact_digest_mismatch' | 'manifest_missing' | 'manifest_invalid' | 'manifest_mismatch', reason: string, details: Record<string, unknown>): Checked<never> {
  return { ok: false, rejection: { stage: 'artifact', code, reason, details } };
}

export async function checkArtifact(registry: ModelRegistry, result: ExperimentResult): Promise<Checked<ModelManifest>> {
  const { model, version, artifact } = result;
  const where = `segserve_models/${model}/${version}`;
  const info = await registry.info(model, version, 'model.onnx');
  if (!info) return reject('artifact_missing', `Rejected: ${where}/model.onnx is not in the object store.`, { object: `${where}/model.onnx` });
  if (info.size !== artifact.size) {
    return reject('artifact_size_mismatch', `Rejected: ${where}/model.onnx has ${info.size} bytes, the result claims ${artifact.size}.`, { stored_size: info.size, claimed_size: artifact.size });
  }
  const hashed = await registry.hashModel(model, version);
  if (!hashed) return reject('artifact_missing', `Rejected: ${where}/model.onnx disappeared while it was being read.`, { object: `${where}/model.onnx` });
  if (hashed.sha256 !== artifact.sha256) {
    return reject('artifact_digest_mismatch', `Rejected: ${where}/model.onnx has sha256 ${hashed.sha256}, the result claims ${artifact.sha256}.`, {
      stored_sha256: hashed.sha256,
      claimed_sha256: artifact.sha256,
    });
  }
  let manifest: ModelManifest | null;
  try {
    manifest = await registry.readManifest(model, version);
  } catch (err) {
    const text = err instanceof SegserveError ? err.message : String(err);
    return reject('manifest_invalid', `Rejected: ${where}/model.json is invalid (${text}).`, { error: text });
  }
  if (!manifest) return reject('manifest_missing', `Rejected: ${where}/model.json is not in the object store.`, { object: `${where}/model.json` });
  if (manifest.name !== model || manifest.version !== version || manifest.sha256 !== artifact.sha256) {
    return reject('manifest_mismatch', `Rejected: ${where}/model.json describes ${manifest.name} ${manifest.version} with sha256 ${manifest.sha256}, not this result's artifact.`, {
      manifest: { name: manifest.name, version: manifest.version, sha256: manifest.sha256 },
    });
  }
  return { ok: true, value: manifest };
}
