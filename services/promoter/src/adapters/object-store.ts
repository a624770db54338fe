// Model artifacts in the object store `segserve_models` (docs/architecture.md#nats):
// `<model>/<version>/model.onnx` and `<model>/<version>/model.json`. Names are validated before
// they become object names (docs/reliability.md item 39), and every read of model.onnx is hashed here —
// the store's own digest is written by the uploading client, so it is not evidence.
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import type { ObjectInfo, ObjectStore } from '@nats-io/obj';
import { SegserveError, isValidModelName, isValidModelVersion, parseModelManifest, type ModelManifest } from '@segserve/proto';

export type ModelFile = 'model.onnx' | 'model.json';

export function modelObjectName(model: string, version: string, file: ModelFile): string {
  if (!isValidModelName(model)) throw new SegserveError('INVALID_INPUT', `'${model}' is not a valid model name`);
  if (!isValidModelVersion(version)) throw new SegserveError('INVALID_INPUT', `'${version}' is not a valid model version`);
  return `${model}/${version}/${file}`;
}

/** `SHA-256=<base64url>` (the object store's digest header) → lowercase hex, or null. */
export function objectDigestHex(info: Pick<ObjectInfo, 'digest'>): string | null {
  const m = /^SHA-256=(.+)$/i.exec(info.digest);
  return m ? Buffer.from(m[1] as string, 'base64url').toString('hex') : null;
}

export interface UploadProgress {
  (file: ModelFile, sentBytes: number, totalBytes: number): void;
}

export interface UploadResult {
  readonly onnx: { readonly sha256: string; readonly size: number; readonly uploaded: boolean };
  readonly manifest: ModelManifest;
}

export async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

export class ModelRegistry {
  constructor(private readonly os: ObjectStore) {}

  async info(model: string, version: string, file: ModelFile): Promise<ObjectInfo | null> {
    const info = await this.os.info(modelObjectName(model, version, file));
    return info && !info.deleted ? info : null;
  }

  /**
   * Uploads a model directory (model.onnx + model.json). The manifest is validated and its
   * sha256 must be the file's. An object already stored with the same digest is not re-sent,
   * so publishing again is cheap; model.json is always written last, so a reader that finds
   * it finds the matching model.onnx.
   */
  async upload(dir: string, onProgress?: UploadProgress): Promise<UploadResult> {
    const onnxPath = path.join(dir, 'model.onnx');
    const manifestBytes = await readBytes(path.join(dir, 'model.json'));
    const manifest = parseModelManifest(JSON.parse(new TextDecoder().decode(manifestBytes)), path.join(dir, 'model.json'));
    const sha256 = await sha256File(onnxPath);
    if (sha256 !== manifest.sha256) {
      throw new SegserveError('INVALID_INPUT', `${onnxPath}: sha256 ${sha256} is not the ${manifest.sha256} that model.json declares`);
    }
    const size = (await stat(onnxPath)).size;
    const existing = await this.info(manifest.name, manifest.version, 'model.onnx');
    let uploaded = false;
    if (!existing || existing.size !== size || objectDigestHex(existing) !== sha256) {
      let sent = 0;
      const counted = Readable.toWeb(createReadStream(onnxPath)).pipeThrough(
        new TransformStream<Uint8Array, Uint8Array>({
          transform(chunk, controller) {
            sent += chunk.byteLength;
            onProgress?.('model.onnx', sent, size);
            controller.enqueue(chunk);
          },
        }),
      );
      await this.os.put({ name: modelObjectName(manifest.name, manifest.version, 'model.onnx'), description: `${manifest.name} ${manifest.version} sha256:${sha256}` }, counted as ReadableStream<Uint8Array>);
      uploaded = true;
    }
    onProgress?.('model.onnx', size, size);
    await this.os.putBlob({ name: modelObjectName(manifest.name, manifest.version, 'model.json') }, manifestBytes);
    onProgress?.('model.json', manifestBytes.byteLength, manifestBytes.byteLength);
    return { onnx: { sha256, size, uploaded }, manifest };
  }

  /** The stored model.json, validated; null when absent. Throws INVALID_INPUT when invalid. */
  async readManifest(model: string, version: string): Promise<ModelManifest | null> {
    const bytes = await this.os.getBlob(modelObjectName(model, version, 'model.json'));
    if (!bytes) return null;
    let value: unknown;
    try {
      value = JSON.parse(new TextDecoder().decode(bytes));
    } catch (err) {
      throw new SegserveError('INVALID_INPUT', `segserve_models/${model}/${version}/model.json is not JSON`, { cause: err });
    }
    return parseModelManifest(value, `segserve_models/${model}/${version}/model.json`);
  }

  /** Streams model.onnx and hashes it; null when absent. */
  async hashModel(model: string, version: string): Promise<{ readonly sha256: string; readonly size: number } | null> {
    const result = await this.os.get(modelObjectName(model, version, 'model.onnx'));
    if (!result) return null;
    const hash = createHash('sha256');
    let size = 0;
    for await (const chunk of result.data) {
      hash.update(chunk);
      size += chunk.byteLength;
    }
    await result.error; // a digest mismatch is reported here, but we trust our own hash
    return { sha256: hash.digest('hex'), size };
  }

  /**
   * Downloads a version into `<cacheDir>/<model>/<version>-<sha12>/` (model.onnx verified
   * against `sha256`), reusing an earlier download. Returns the directory.
   */
  async download(model: string, version: string, sha256: string, cacheDir: string): Promise<string> {
    const dir = path.join(cacheDir, model, `${version}-${sha256.slice(0, 12)}`);
    const onnx = path.join(dir, 'model.onnx');
    if ((await exists(path.join(dir, 'model.json'))) && (await sha256File(onnx).catch(() => '')) === sha256) return dir;
    const partial = `${dir}.partial-${process.pid}`;
    await rm(partial, { recursive: true, force: true });
    await mkdir(partial, { recursive: true });
    try {
      const result = await this.os.get(modelObjectName(model, version, 'model.onnx'));
      if (!result) throw new SegserveError('MODEL_NOT_FOUND', `segserve_models/${model}/${version}/model.onnx does not exist`);
      await pipeline(Readable.fromWeb(result.data as WebReadableStream<Uint8Array>), createWriteStream(path.join(partial, 'model.onnx')));
      const got = await sha256File(path.join(partial, 'model.onnx'));
      if (got !== sha256) throw new SegserveError('INVALID_INPUT', `segserve_models/${model}/${version}/model.onnx has sha256 ${got}, expected ${sha256}`);
      const manifest = await this.os.getBlob(modelObjectName(model, version, 'model.json'));
      if (!manifest) throw new SegserveError('MODEL_NOT_FOUND', `segserve_models/${model}/${version}/model.json does not exist`);
      await writeFile(path.join(partial, 'model.json'), manifest);
      await rm(dir, { recursive: true, force: true });
      await rename(partial, dir);
      return dir;
    } catch (err) {
      await rm(partial, { recursive: true, force: true });
      throw err;
    }
  }
}

async function readBytes(file: string): Promise<Uint8Array> {
  return new Uint8Array(await readFile(file));
}

async function exists(file: string): Promise<boolean> {
  return stat(file).then(
    () => true,
    () => false,
  );
}
