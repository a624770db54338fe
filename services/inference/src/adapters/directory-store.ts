// A model version in a local directory: <dir>/model.json and <dir>/model.onnx (docs/architecture.md#model-package).

import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { ModelLoadError, verifyArtifact, type ModelArtifact } from '../domain/model.js';
import type { ModelStore } from '../ports.js';

async function readOrMissing(file: string): Promise<Buffer> {
  try {
    return await readFile(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new ModelLoadError('missing', code === 'ENOENT' ? `${file} does not exist` : `cannot read ${file}: ${code ?? String(err)}`, { cause: err });
  }
}

export class DirectoryModelStore implements ModelStore {
  readonly location: string;
  readonly #pinned: string | undefined;

  constructor(options: { dir: string; sha256?: string | undefined }) {
    this.location = path.resolve(options.dir);
    this.#pinned = options.sha256;
  }

  async load(): Promise<ModelArtifact> {
    const manifestBytes = await readOrMissing(path.join(this.location, 'model.json'));
    let manifestJson: unknown;
    try {
      manifestJson = JSON.parse(manifestBytes.toString('utf8'));
    } catch (err) {
      throw new ModelLoadError('invalid_manifest', `${this.location}/model.json is not valid JSON`, { cause: err });
    }
    const onnx = await readOrMissing(path.join(this.location, 'model.onnx'));
    return verifyArtifact(manifestJson, onnx, this.location, this.#pinned);
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
