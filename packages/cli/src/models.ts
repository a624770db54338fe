// The models `segserve start` and `segserve stack` serve when none is named: the bundled default
// version of models/facade-ads, else the tiny test fixture (so the commands work before any model
// is committed), and a sample image for the printed examples.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root, from packages/cli/{src,dist}/models.* */
export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

export interface ModelChoice {
  readonly dir: string;
  readonly name: string;
  readonly version: string;
  /** Why this one (printed): the bundled default, or the test fixture standing in for it. */
  readonly note: string;
}

const isModelDir = (dir: string): boolean => existsSync(path.join(dir, 'model.json')) && existsSync(path.join(dir, 'model.onnx'));

/** Version directories of `modelDir`, newest first ("10" after "9"; "2026-11-27.1" by text). */
function versionDirs(modelDir: string): string[] {
  if (!existsSync(modelDir)) return [];
  return readdirSync(modelDir)
    .filter((v) => statSync(path.join(modelDir, v)).isDirectory() && isModelDir(path.join(modelDir, v)))
    .sort((a, b) => b.localeCompare(a, 'en', { numeric: true }));
}

/** The model in `dir` (its model.json name and version), with why it was chosen. */
export function describeModel(dir: string, note: string): ModelChoice {
  const manifest = JSON.parse(readFileSync(path.join(dir, 'model.json'), 'utf8')) as { name?: unknown; version?: unknown };
  return { dir, name: String(manifest.name), version: String(manifest.version), note };
}

/**
 * The one place that names the default model: `models/facade-ads/DEFAULT` holds its version
 * (docs/experiments.md says why that one). `start`, `stack`, the
 * benchmarks (bench/lib/procs.mjs) and the README's commands all follow it; a better model
 * becomes the default by changing that file. Other bundled versions are candidates for the
 * promotion demos, so "newest" is not "default".
 */
export const DEFAULT_MODEL_FILE = path.join('models', 'facade-ads', 'DEFAULT');

/**
 * The model `start` serves: models/facade-ads/<the DEFAULT file's version>, else the newest
 * version, and while none is in the repository, the tiny test fixture so that the command
 * still works.
 */
export function chooseDefaultModel(root: string = REPO_ROOT): ModelChoice {
  const bundled = path.join(root, 'models', 'facade-ads');
  const marker = path.join(root, DEFAULT_MODEL_FILE);
  const preferred = existsSync(marker) ? readFileSync(marker, 'utf8').trim() : '';
  if (preferred !== '' && isModelDir(path.join(bundled, preferred))) return describeModel(path.join(bundled, preferred), 'the bundled default model');
  const newest = versionDirs(bundled)[0];
  if (newest) return describeModel(path.join(bundled, newest), 'the bundled default model');
  const fixture = path.join(root, 'test', 'fixtures', 'models', 'tiny-seg');
  const tiny = versionDirs(fixture)[0];
  if (tiny) return describeModel(path.join(fixture, tiny), 'the tiny test model: models/facade-ads has no model version yet');
  throw new Error(`no model to serve: neither ${bundled}/<version>/ nor ${fixture}/<version>/ has model.json + model.onnx`);
}

/** An image for the printed examples: the model's golden set, else the tiny golden set. */
export function sampleImage(model: ModelChoice, root: string = REPO_ROOT): string | undefined {
  const candidates = [path.join(path.dirname(model.dir), 'golden', 'images'), path.join(root, 'models', 'facade-ads', 'golden', 'images'), path.join(root, 'test', 'fixtures', 'golden-tiny', 'images')];
  for (const dir of candidates) {
    if (!existsSync(dir)) continue;
    const image = readdirSync(dir)
      .filter((f) => /\.(jpe?g|png|webp)$/i.test(f))
      .sort()[0];
    if (image) return path.join(dir, image);
  }
  return undefined;
}
