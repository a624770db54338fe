// Policy files (SEGSERVE_POLICY): one file, or a directory of `<model>.yaml|.yml|.json`, one
// per model. The models the intake consumes are exactly those with a policy.
import { readFile, readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { SegserveError } from '@segserve/proto';
import { parsePolicyText, type Policy } from '../domain/policy.js';

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
