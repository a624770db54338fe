// Where the local driver finds a model version: a directory on disk whose model.json names the
// same version and digest (bundled models, test fixtures), else the NATS object store, which
// the inference process loads itself (SEGSERVE_NATS_URL + SEGSERVE_MODEL_NAME/VERSION/SHA256).
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { isValidModelName } from '@segserve/proto';
import type { ModelRef } from '../domain/ports.js';
import type { LocalModelLaunch, ModelResolver } from './local-deployer.js';

export interface ModelResolverOptions {
  /** Directories laid out as `<root>/<model>/<version>/{model.json,model.onnx}`. */
  readonly roots: readonly string[];
  /** Fallback: the object store of this NATS server. */
  readonly natsUrl?: string;
}

export function modelResolver(options: ModelResolverOptions): ModelResolver {
  return async (ref: ModelRef): Promise<LocalModelLaunch> => {
    // Names reach a path join: refuse anything that could escape the root (docs/reliability.md item 39).
    if (!isValidModelName(ref.model) || !/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(ref.version)) {
      throw new Error(`invalid model reference ${ref.model}/${ref.version}`);
    }
    for (const root of options.roots) {
      const dir = path.join(root, ref.model, ref.version);
      const manifest = await readFile(path.join(dir, 'model.json'), 'utf8').then(
        (t) => JSON.parse(t) as { sha256?: unknown; version?: unknown },
        () => undefined,
      );
      if (manifest?.sha256 === ref.sha256 && String(manifest.version) === ref.version) return { args: ['--model', dir], env: {} };
    }
    if (options.natsUrl) {
      return {
        args: [],
        env: { SEGSERVE_NATS_URL: options.natsUrl, SEGSERVE_MODEL_NAME: ref.model, SEGSERVE_MODEL_VERSION: ref.version, SEGSERVE_MODEL_SHA256: ref.sha256 },
      };
    }
    throw new Error(`model ${ref.model}/${ref.version} (sha256 ${ref.sha256.slice(0, 12)}…) is in none of ${options.roots.join(', ')} and no NATS object store is configured`);
  };
}
