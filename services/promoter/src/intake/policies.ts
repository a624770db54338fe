// Policy files (SEGSERVE_POLICY): one file, or a directory of `<model>.yaml|.yml|.json`, one
// per model. The models the intake consumes are exactly those with a policy.
import { existsSync } from 'node:fs';
import { readFile, readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { SegserveError } from '@segserve/proto';
import { defaultGoldenSet, parsePolicyText, type Policy } from '../domain/policy.js';

/** The policies that ship with the promoter (services/promoter/policies, SEGSERVE_POLICY's default). */
export const BUNDLED_POLICIES = fileURLToPath(new URL('../../policies', import.meta.url));

const POLICY_FILE = /\.(ya?ml|json)$/;

export async function loadPolicies(fileOrDir: string): Promise<ReadonlyMap<string, Policy>> {
  const info = await stat(fileOrDir).catch((err: unknown) => {
    throw new SegserveError('INVALID_INPUT', `policy path ${fileOrDir} cannot be read`, { cause: err });
  });
  const files = info.isDirectory()
    ? (await readdir(fileOrDir))
        .filter((f) => POLICY_FILE.test(f))
        .sort()
        .map((f) => path.join(fileOrDir, f))
    : [fileOrDir];
  const policies = new Map<string, Policy>();
  for (const file of files) {
    const policy = parsePolicyText(await readFile(file, 'utf8'), file);
    const other = policies.get(policy.model);
    if (other) throw new SegserveError('INVALID_INPUT', `${file}: a second policy for model '${policy.model}'`);
    policies.set(policy.model, policy);
  }
  if (policies.size === 0) throw new SegserveError('INVALID_INPUT', `no policy file (*.yaml, *.yml, *.json) in ${fileOrDir}`);
  return policies;
}

/**
 * The golden set a version directory `<models>/<model>/<version>` is measured on by default
 * (`segserve publish`, `segserve eval --against`): `<models>/<model>/<set>`, the set being the
 * newest that the model's policy accepts (`verify.golden_sets`), `golden` without a policy.
 */
export async function defaultGoldenDir(modelDir: string, policyPath: string = BUNDLED_POLICIES): Promise<string> {
  const manifest = JSON.parse(await readFile(path.join(modelDir, 'model.json'), 'utf8').catch(() => '{}')) as { name?: unknown };
  const policies = existsSync(policyPath) ? await loadPolicies(policyPath) : new Map<string, Policy>();
  return path.join(modelDir, '..', defaultGoldenSet(typeof manifest.name === 'string' ? policies.get(manifest.name) : undefined));
}
