// Every bundled model version (models/<name>/<version>/) is a valid package (docs/architecture.md#model-package): the
// manifest passes the schema, the digest matches model.onnx, and onnxruntime agrees with the
// manifest about the input and output names and shapes.
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { parseModelManifest } from '@segserve/proto';
import { REPO_ROOT } from '../helpers/process.js';

const MODELS = path.join(REPO_ROOT, 'models');

function versionDirs(): string[] {
  const dirs: string[] = [];
  for (const name of readdirSync(MODELS)) {
    const modelDir = path.join(MODELS, name);
    if (!statSync(modelDir).isDirectory()) continue;
    for (const version of readdirSync(modelDir)) {
      const dir = path.join(modelDir, version);
      if (statSync(dir).isDirectory() && existsSync(path.join(dir, 'model.json'))) dirs.push(path.relative(REPO_ROOT, dir));
    }
  }
  return dirs.sort();
}

const dirs = versionDirs();

describe('bundled models', () => {
  it('include the default model and its full-size variant', () => {
    expect(dirs).toContain(path.join('models', 'facade-ads', '2'));
    expect(dirs).toContain(path.join('models', 'facade-ads-full', '2'));
  });

  it.each(dirs)('%s is a valid model package', async (dir) => {
    const abs = path.join(REPO_ROOT, dir);
    const manifest = parseModelManifest(JSON.parse(readFileSync(path.join(abs, 'model.json'), 'utf8')), `${dir}/model.json`);
    expect(path.basename(path.dirname(abs))).toBe(manifest.name);
    expect(path.basename(abs)).toBe(manifest.version);
    const onnx = readFileSync(path.join(abs, 'model.onnx'));
    expect(createHash('sha256').update(onnx).digest('hex')).toBe(manifest.sha256);
    for (const m of ['miou', 'latency_ms_p95', 'peak_rss_mb']) expect(Number.isFinite(manifest.metrics?.[m]), `${dir} metrics.${m}`).toBe(true);

    const session = await ort.InferenceSession.create(onnx, { intraOpNumThreads: 1, enableCpuMemArena: false });
    try {
      expect(session.inputNames).toEqual([manifest.input.name]);
      expect(session.outputNames).toContain(manifest.output.name);
      const input = new ort.Tensor('float32', new Float32Array(3 * manifest.input.height * manifest.input.width), [1, 3, manifest.input.height, manifest.input.width]);
      const out = (await session.run({ [manifest.input.name]: input }))[manifest.output.name];
      expect(out?.dims).toEqual([1, manifest.classes.length, manifest.input.height, manifest.input.width]);
    } finally {
      await session.release();
    }
  });
});
