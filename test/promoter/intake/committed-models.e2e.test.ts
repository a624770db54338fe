// The committed facade-ads versions through `segserve publish`, the intake and verification,
// with the default policy (services/promoter/policies/facade-ads.yaml) and version 2 as the
// stable: v3 (v2 trained longer) wins on mIoU, v4 (half the input size: fast, inaccurate) loses
// on its mIoU floor, v5 (twice the input size: slow, large) on latency and memory, and v3 with an
// inflated mIoU claim is caught by verification on the golden set.
//
// The intake judges the claims with the default policy as it is. The verifier gets the same
// policy without what this machine's speed decides: the bundled versions' latency claims were
// measured on an idle machine, and a verifier sharing the cores with other work measures the
// same network several times slower, so the absolute latency limit and the latency claim are left
// out, and the latency and memory objectives (judged on the paired candidate/stable ratio) get a
// tolerance of 100 %: v3 and v2 (the same network) measured side by side on a busy machine differ
// by more than the policy's margins. mIoU, which decides every scenario of this
// file, is exact and judged with the default figures; the verifier therefore passes over the
// golden set once (more passes only sharpen the latency percentile).
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ModelManifest, RolloutState } from '@segserve/proto';
import { LocalDeployer } from '../../../services/promoter/src/adapters/local-deployer.js';
import { modelResolver } from '../../../services/promoter/src/adapters/local-models.js';
import { parse as parseYaml } from 'yaml';
import { parsePolicy } from '../../../services/promoter/src/domain/policy.js';
import { loadPolicies } from '../../../services/promoter/src/intake/policies.js';
import { createVerifier } from '../../../services/promoter/src/verify/index.js';
import { REPO_ROOT, SEGSERVE_BIN, tempDir, type TempDir } from '../../helpers/process.js';
import { VerifyThenStopRunner, runSegserve, startWorld, type World } from './support.js';

const MODELS = path.join(REPO_ROOT, 'models');
const VERSIONS = path.join(MODELS, 'facade-ads');
const COMMAND = [process.execPath, SEGSERVE_BIN, 'inference'];

let world: World;
let dir: TempDir;
let deployer: LocalDeployer;
const manifests = new Map<string, ModelManifest>();

function segserve(args: string[]): Promise<string> {
  return runSegserve(world, args);
}

/** `segserve publish` of a bundled version (claims from its model.json unless given). */
async function publish(version: string, claims?: Record<string, number>, id?: string): Promise<string> {
  const args = ['publish', '--model', path.join(VERSIONS, version), '--json'];
  if (claims) {
    const file = path.join(dir.path, `claims-${version}-${id ?? 'x'}.json`);
    await writeFile(file, JSON.stringify(claims));
    args.push('--result', file);
  }
  if (id) args.push('--id', id);
  const out = await segserve(args);
  return (JSON.parse(out.trim().split('\n').pop() as string) as { result: { id: string } }).result.id;
}

beforeAll(async () => {
  for (const v of ['2', '3', '4', '5']) {
    // The versions are committed by the experiments pipeline; without them this test must fail.
    manifests.set(v, JSON.parse(await readFile(path.join(VERSIONS, v, 'model.json'), 'utf8')) as ModelManifest);
  }
  const policies = await loadPolicies(path.join(REPO_ROOT, 'services', 'promoter', 'policies', 'facade-ads.yaml'));
  const doc = parseYaml(await readFile(path.join(REPO_ROOT, 'services', 'promoter', 'policies', 'facade-ads.yaml'), 'utf8')) as {
    objectives: { metric: string; tolerance: number }[];
    limits: Record<string, number>;
    verify: { claim_tolerance: Record<string, number>; repeats?: number };
  };
  for (const o of doc.objectives) if (o.metric !== 'miou') o.tolerance = 1;
  delete doc.verify.claim_tolerance['latency_ms_p95'];
  delete doc.limits['latency_ms_p95'];
  doc.verify.repeats = 1;
  const verifierPolicies = new Map([['facade-ads', parsePolicy(doc)]]);
  world = await startWorld({ policies: [...policies.values()] });
  dir = await tempDir('segserve-committed-');
  const stable = manifests.get('2') as ModelManifest;
  const state: RolloutState = {
    model: 'facade-ads',
    stable: { version: '2', sha256: stable.sha256, target: 'ipv4:127.0.0.1:1' },
    canary: null,
    phase: 'Succeeded',
    updated_at: new Date().toISOString(),
    revision: 1,
  };
  await world.objects.rollouts.put('facade-ads', JSON.stringify(state));
  const env = { PATH: process.env['PATH'] ?? '', MALLOC_ARENA_MAX: '2' };
  const resolve = modelResolver({ roots: [MODELS] });
  deployer = await LocalDeployer.create({ command: COMMAND, env, resolve, stateDir: path.join(dir.path, 'deployer'), log: world.log });
  const verifier = createVerifier({ policies: verifierPolicies, goldenRoot: MODELS, rollouts: world.objects.rollouts, deployer, sandbox: { command: COMMAND, env, resolve, logDir: path.join(dir.path, 'sandbox') }, log: world.log });
  await world.startIntake(new VerifyThenStopRunner(deployer, verifier), { policies, modelRoots: [MODELS], verifications: verifier, consumer: { ackWaitMs: 30_000, maxDeliver: 5 } });
}, 300_000);

afterAll(async () => {
  await deployer?.close();
  await world?.[Symbol.asyncDispose]();
  await dir?.[Symbol.asyncDispose]();
});

describe('committed facade-ads versions against the stable 2, default policy', () => {
  it('v3 (v2 trained longer, same network) is verified on the golden set and accepted', async () => {
    const id = await publish('3');
    const record = await world.waitDecision(id, undefined, 300_000);
    expect(record, record.reason).toMatchObject({ status: 'promoted', version: '3', stable: { version: '2' } });
    expect(record.claimed).toEqual(manifests.get('3')?.metrics);
    expect(record.measured?.['miou']).toBeCloseTo(manifests.get('3')?.metrics?.['miou'] as number, 2);
    expect(record.stable?.measured?.['miou']).toBeCloseTo(manifests.get('2')?.metrics?.['miou'] as number, 2);
    expect(record.reason).toMatch(/^Verified on 24 golden images .* against the stable 2 measured the same way .*miou .* better than the stable/);
  });

  it('v4 (half the input size: faster, less accurate) is rejected on its claimed mIoU', async () => {
    const id = await publish('4');
    const record = await world.waitDecision(id, undefined, 300_000);
    expect(record).toMatchObject({ status: 'rejected', stage: 'policy', reason_code: 'limit_exceeded', stable: { version: '2' } });
    expect(record.reason).toMatch(/^Not promoted: miou [\d.]+ is below the minimum 0\.65\.$/);
  });

  it('v5 (twice the input size) is rejected on its claims: slower and larger than the stable', async () => {
    const id = await publish('5');
    const record = await world.waitDecision(id, undefined, 300_000);
    expect(record).toMatchObject({ status: 'rejected', stage: 'policy', reason_code: 'worse_than_stable' });
    expect(record.reason).toMatch(/latency_ms_p95 [\d.]+ vs [\d.]+ \([\d.]+%\) is worse than the tolerance 25%/);
    expect(record.reason).toMatch(/peak_rss_mb [\d.]+ vs [\d.]+ \([\d.]+%\) is worse than the tolerance 15%/);
  });

  it('v3 published with an inflated mIoU claim is rejected by verification, with both figures', async () => {
    const claims = { ...(manifests.get('3')?.metrics as Record<string, number>) };
    claims['miou'] = Math.min(1, (claims['miou'] as number) + 0.05);
    const id = await publish('3', claims, 'facade-ads-3-inflated');
    const record = await world.waitDecision(id, undefined, 300_000);
    expect(record).toMatchObject({ status: 'rejected', stage: 'verification', reason_code: 'claim_not_reproduced', claimed: { miou: claims['miou'] } });
    expect(record.measured?.['miou']).toBeLessThan((claims['miou'] as number) - 0.01);
    expect(record.reason).toMatch(/miou measured [\d.]+ against a claimed [\d.]+/);

    const table = await segserve(['decisions', 'facade-ads']);
    for (const [version, decision] of [['3', 'promoted'], ['4', 'rejected'], ['5', 'rejected']]) {
      expect(table).toMatch(new RegExp(`^facade-ads-${version}-[0-9a-f]{12}\\s+${version}\\s+.*\\s${decision}\\s`, 'm'));
    }
    expect(table).toMatch(/^facade-ads-3-inflated\s+3\s+.*→.*\srejected\s+claim_not_reproduced\s/m);
  });
});
