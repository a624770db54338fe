// The bundled default model (models/facade-ads/DEFAULT) meets issue 13's bar: its model.json
// claims a golden mIoU of at least 0.80 on the golden set it names, and `segserve eval` on that set
// (the product's pipeline, as the promoter's verifier runs it) reproduces the claim to 4 decimals
// on the same images (same digest). Every bundled version's claim names a golden set that is
// bundled with that digest, so that the verifier can reproduce it.
import { readFileSync, readdirSync, existsSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { goldenSetDigest } from '@segserve/runtime';
import { REPO_ROOT, SEGSERVE_BIN, spawnProcess } from '../helpers/process.js';

const MODEL_DIR = path.join(REPO_ROOT, 'models', 'facade-ads');

interface Manifest {
  readonly version: string;
  readonly metrics?: Record<string, number>;
  readonly training?: { readonly golden_set?: string; readonly golden_sha256?: string };
}

const manifest = (dir: string): Manifest => JSON.parse(readFileSync(path.join(dir, 'model.json'), 'utf8')) as Manifest;

describe('the default facade-ads model', () => {
  it('is named by models/facade-ads/DEFAULT, claims ≥ 0.80 golden mIoU, and segserve eval reproduces the claim', async () => {
    const version = readFileSync(path.join(MODEL_DIR, 'DEFAULT'), 'utf8').trim();
    const dir = path.join(MODEL_DIR, version);
    const m = manifest(dir);
    expect(m.version).toBe(version);
    const claim = m.metrics?.['miou'];
    expect(claim).toBeGreaterThanOrEqual(0.8);
    const set = m.training?.golden_set;
    expect(set, `${version}/model.json names its golden set`).toBeTruthy();
    const golden = path.join(MODEL_DIR, set as string);

    const p = spawnProcess(process.execPath, [SEGSERVE_BIN, 'eval', '--model', dir, '--golden', golden, '--json', '--passes', '1'], { name: 'segserve eval', env: { MALLOC_ARENA_MAX: '2' } });
    const code = await p.exited;
    expect(code, p.output()).toBe(0);
    const report = JSON.parse(p.output().trim().split('\n').pop() as string) as { metrics: { miou: number }; golden: { sha256: string; images: number } };
    expect(report.golden.sha256).toBe(m.training?.golden_sha256);
    expect(report.golden.images).toBeGreaterThanOrEqual(100);
    expect(report.metrics.miou.toFixed(4)).toBe((claim as number).toFixed(4));
  }, 300_000);

  it('every bundled version names a bundled golden set with the digest it was measured on', async () => {
    const versions = readdirSync(MODEL_DIR).filter((v) => statSync(path.join(MODEL_DIR, v)).isDirectory() && existsSync(path.join(MODEL_DIR, v, 'model.json')));
    expect(versions.length).toBeGreaterThan(0);
    const digests = new Map<string, string>();
    for (const v of versions) {
      const t = manifest(path.join(MODEL_DIR, v)).training;
      if (!t?.golden_sha256) continue;
      const set = t.golden_set ?? 'golden';
      if (!digests.has(set)) digests.set(set, await goldenSetDigest(path.join(MODEL_DIR, set)));
      expect(t.golden_sha256, `${v}: golden set ${set}`).toBe(digests.get(set));
    }
  });
});
