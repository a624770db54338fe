// A model version from the NATS object store `segserve_models` (docs/architecture.md#nats):
// `<model>/<version>/model.json` and `<model>/<version>/model.onnx`, cached on local disk under
// `<cacheDir>/<model>/<version>-<sha12>/`. The store's own digest header is written by the
// uploader, so it proves nothing: the bytes are hashed here and checked against model.json
// (and SEGSERVE_MODEL_SHA256 when pinned). Only read permissions are needed (deploy/nats).

import { connect } from '@nats-io/transport-node';
import { Objm } from '@nats-io/obj';
import { NATS_NAMES, isValidModelName, isValidModelVersion, parseNatsUrl, redactNatsUrl } from '@segserve/proto';
import { createHash } from 'node:crypto';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { ModelLoadError, sha256Hex, verifyArtifact, type ModelArtifact } from '../domain/model.js';
import type { ModelStore } from '../ports.js';
import type { Logger } from '@segserve/runtime';

export interface NatsModelStoreOptions {
  readonly url: string;
  readonly name: string;
  readonly version: string;
  /** Pinned digest (SEGSERVE_MODEL_SHA256): also lets a cached copy load while NATS is down. */
  readonly sha256: string | undefined;
  readonly cacheDir: string;
  readonly logger: Logger;
  readonly connectTimeoutMs?: number;
}

export class NatsModelStore implements ModelStore {
  readonly location: string;
  readonly #o: NatsModelStoreOptions;
  readonly #prefix: string;

  constructor(options: NatsModelStoreOptions) {
    // Names become object keys and cache paths (docs/reliability.md item 39); config.ts validated them too.
    if (!isValidModelName(options.name) || !isValidModelVersion(options.version)) throw new Error(`invalid model reference ${options.name}/${options.version}`);
    this.#o = options;
    this.#prefix = `${options.name}/${options.version}`;
    this.location = `${redactNatsUrl(options.url)} ${NATS_NAMES.modelsObjectStore}/${this.#prefix}`;
  }

  #cacheDir(sha256: string): string {
    return path.join(this.#o.cacheDir, this.#o.name, `${this.#o.version}-${sha256.slice(0, 12)}`);
  }

  /** A complete cached copy whose model.onnx hashes to `sha256`, or undefined. */
  async #fromCache(sha256: string): Promise<ModelArtifact | undefined> {
    const dir = this.#cacheDir(sha256);
    try {
      const [json, onnx] = await Promise.all([readFile(path.join(dir, 'model.json'), 'utf8'), readFile(path.join(dir, 'model.onnx'))]);
      if (sha256Hex(onnx) !== sha256) return undefined;
      return verifyArtifact(JSON.parse(json), onnx, `${this.location} (cached in ${dir})`, this.#o.sha256);
    } catch {
      return undefined;
    }
  }

  async load(): Promise<ModelArtifact> {
    const pinned = this.#o.sha256;
    let nc;
    try {
      nc = await connect({ ...parseNatsUrl(this.#o.url), name: `segserve-inference ${this.#prefix}`, timeout: this.#o.connectTimeoutMs ?? 5_000, reconnect: false });
    } catch (err) {
      const cached = pinned === undefined ? undefined : await this.#fromCache(pinned);
      if (cached) {
        this.#o.logger.warn('NATS unreachable; loading the pinned model from the local cache', { source: this.location, cache: this.#cacheDir(pinned!) });
        return cached;
      }
      throw new ModelLoadError('missing', `cannot reach NATS at ${redactNatsUrl(this.#o.url)}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
    try {
      let os;
      try {
        os = await new Objm(nc).open(NATS_NAMES.modelsObjectStore);
      } catch (err) {
        throw new ModelLoadError('missing', `object store ${NATS_NAMES.modelsObjectStore} is not available: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
      }
      const where = `${NATS_NAMES.modelsObjectStore}/${this.#prefix}`;
      const manifestBytes = await os.getBlob(`${this.#prefix}/model.json`);
      if (!manifestBytes) throw new ModelLoadError('missing', `${where}/model.json does not exist`);
      let manifestJson: unknown;
      try {
        manifestJson = JSON.parse(new TextDecoder().decode(manifestBytes));
      } catch (err) {
        throw new ModelLoadError('invalid_manifest', `${where}/model.json is not valid JSON`, { cause: err });
      }
      const declared = (manifestJson as { sha256?: unknown }).sha256;
      const expected = pinned ?? (typeof declared === 'string' && /^[0-9a-f]{64}$/.test(declared) ? declared : undefined);
      if (expected !== undefined) {
        const cached = await this.#fromCache(expected);
        if (cached) return verifyArtifact(manifestJson, cached.onnx, this.location, pinned);
      }
      const result = await os.get(`${this.#prefix}/model.onnx`);
      if (!result) throw new ModelLoadError('missing', `${where}/model.onnx does not exist`);
      const chunks: Uint8Array[] = [];
      const hash = createHash('sha256');
      for await (const chunk of result.data) {
        chunks.push(chunk);
        hash.update(chunk);
      }
      // A digest mismatch or a truncated object is reported here; our own hash decides anyway.
      await result.error;
      const onnx = Buffer.concat(chunks);
      const artifact = verifyArtifact(manifestJson, onnx, this.location, pinned);
      await this.#writeCache(artifact, manifestBytes);
      return artifact;
    } finally {
      await nc.close().catch(() => undefined);
    }
  }

  /** Best effort: a failed cache write only costs a download next time. */
  async #writeCache(artifact: ModelArtifact, manifestBytes: Uint8Array): Promise<void> {
    const dir = this.#cacheDir(artifact.sha256);
    const partial = `${dir}.partial-${process.pid}`;
    try {
      await rm(partial, { recursive: true, force: true });
      await mkdir(partial, { recursive: true });
      await writeFile(path.join(partial, 'model.onnx'), artifact.onnx);
      await writeFile(path.join(partial, 'model.json'), manifestBytes);
      await rm(dir, { recursive: true, force: true });
      await rename(partial, dir);
    } catch (err) {
      this.#o.logger.warn('could not cache the model on disk', { cache: dir, error: err });
      await rm(partial, { recursive: true, force: true }).catch(() => undefined);
    }
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}
