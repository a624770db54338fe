// The short form of bench/promotion.mjs (issue 12's done-when): with both cores kept busy by two
// CPU-bound processes started and stopped here, and the bundled policy exactly as it ships
// (services/promoter/policies/facade-ads.yaml, no tolerance widened, no limit dropped), v3
// measured with `segserve eval --against v2` is verified and accepted against the stable 2, and
// v4, v5 and a v4 result with an inflated mIoU are refused with limit_exceeded, worse_than_stable
// and claim_not_reproduced. One repeat, and the rollout stops after verification (the
// promotion decision; the canary's own behaviour without traffic is test/promoter/e2e's): the
// verifier's paired candidate/stable ratios and the decisive-limit rule are what keep a busy
// machine from refusing v3. The five-repeat version, with the whole canary and bake, is
// `node bench/promotion.mjs --repeats 5` (docs/benchmarks.md).
import { spawn, type ChildProcess } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ModelManifest, RolloutState } from '@segserve/proto';
import { LocalDeployer } from '../../../services/promoter/src/adapters/local-deployer.js';
import { modelResolver } from '../../../services/promoter/src/adapters/local-models.js';
import { loadPolicies } from '../../../services/promoter/src/intake/policies.js';
import { createVerifier } from '../../../services/promoter/src/verify/index.js';
import { REPO_ROOT, SEGSERVE_BIN, tempDir, type TempDir } from '../../helpers/process.js';
import { VerifyThenStopRunner, runSegserve, startWorld, type World } from './support.js';

const MODELS = path.join(REPO_ROOT, 'models');
const VERSIONS = path.join(MODELS, 'facade-ads');
// v2–v5 were measured on the first golden set (their model.json names its digest).
const GOLDEN = path.join(VERSIONS, 'golden');
const COMMAND = [process.execPath, SEGSERVE_BIN, 'inference'];

let world: World;
let dir: TempDir;
let deployer: LocalDeployer;
const burners: ChildProcess[] = [];

function segserve(args: string[]): Promise<string> {
  return runSegserve(world, args);
}

function publishedId(out: string): string {
  return (JSON.parse(out.trim().split('\n').pop() as string) as { result: { id: string } }).result.id;
}

beforeAll(async () => {
  for (let i = 0; i < 2; i++) burners.push(spawn(process.execPath, ['-e', 'for (;;) {}'], { stdio: 'ignore' }));
  const policies = await loadPolicies(path.join(REPO_ROOT, 'services', 'promoter', 'policies', 'facade-ads.yaml'));
  world = await startWorld({ policies: [...policies.values()] });
  dir = await tempDir('segserve-busy-');
  const stable = JSON.parse(await readFile(path.join(VERSIONS, '2', 'model.json'), 'utf8')) as ModelManifest;
  const state: RolloutState = { model: 'facade-ads', stable: { version: '2', sha256: stable.sha256, target: 'ipv4:127.0.0.1:1' }, canary: null, phase: 'Succeeded', updated_at: new Date().toISOString(), revision: 1 };
  await world.objects.rollouts.put('facade-ads', JSON.stringify(state));
  const env = { PATH: process.env['PATH'] ?? '', MALLOC_ARENA_MAX: '2' };
  const resolve = modelResolver({ roots: [MODELS] });
  deployer = await LocalDeployer.create({ command: COMMAND, env, resolve, stateDir: path.join(dir.path, 'deployer'), log: world.log });
  const verifier = createVerifier({ policies, goldenRoot: MODELS, rollouts: world.objects.rollouts, deployer, sandbox: { command: COMMAND, env, resolve, logDir: path.join(dir.path, 'sandbox') }, log: world.log });
  await world.startIntake(new VerifyThenStopRunner(deployer, verifier), { policies, modelRoots: [MODELS], verifications: verifier, consumer: { ackWaitMs: 30_000, maxDeliver: 5 } });
}, 300_000);

afterAll(async () => {
  for (const b of burners) b.kill('SIGKILL');
  await deployer?.close();
  await world?.[Symbol.asyncDispose]();
  await dir?.[Symbol.asyncDispose]();
});

describe('both cores burned, the bundled policy as it ships, the stable 2', () => {
  it('v3 claimed as ratios to v2 (segserve eval --against) is verified and accepted', async () => {
    expect(burners.every((b) => b.exitCode === null && b.pid !== undefined)).toBe(true);
    const claims = path.join(dir.path, 'v3.json');
    await segserve(['eval', '--model', path.join(VERSIONS, '3'), '--against', path.join(VERSIONS, '2'), '--golden', GOLDEN, '--out', claims]);
    const id = publishedId(await segserve(['publish', '--model', path.join(VERSIONS, '3'), '--result', claims, '--json']));
    const record = await world.waitDecision(id, undefined, 600_000);
    expect(record, record.reason).toMatchObject({ status: 'promoted', version: '3', stable: { version: '2' } });
    expect(record.reason).toMatch(/^Verified on 24 golden images of golden .* against the stable 2 measured the same way .*ratios latency_ms_p95 ×[\d.]+ \(90 % interval/);
    // The claims were ratios, checked against the verifier's own paired ratios.
    const verification = record.details?.['verification'] as { measured_ratios?: Record<string, { samples: number }> } | undefined;
    expect(verification?.measured_ratios?.['latency_ms_p95']?.samples).toBeGreaterThanOrEqual(24);
  }, 900_000);

  // The bench's three refusals, on the same busy machine: two on the claims (policy), one where the
  // verifier measures the inflated mIoU (the candidate's process runs beside the burners).
  it.each([
    { candidate: 'v4 (mIoU under the floor)', version: '4', inflated: false, stage: 'policy', code: 'limit_exceeded', reason: /^Not promoted: miou [\d.]+ is below the minimum 0\.65\.$/ },
    { candidate: 'v5 (twice the input size: slower and larger)', version: '5', inflated: false, stage: 'policy', code: 'worse_than_stable', reason: /latency_ms_p95 [\d.]+ vs [\d.]+ \([\d.]+%\) is worse than the tolerance 25%/ },
    { candidate: 'v4 with its mIoU inflated to 0.70', version: '4', inflated: true, stage: 'verification', code: 'claim_not_reproduced', reason: /miou measured [\d.]+ against a claimed 0\.7 / },
  ])('$candidate is refused with $code', async ({ version, inflated, stage, code, reason }) => {
    const args = ['publish', '--model', path.join(VERSIONS, version), '--json'];
    if (inflated) {
      const manifest = JSON.parse(await readFile(path.join(VERSIONS, version, 'model.json'), 'utf8')) as ModelManifest;
      const result = path.join(dir.path, `v${version}-inflated.json`);
      await writeFile(result, JSON.stringify({ metrics: { ...manifest.metrics, miou: 0.7 } }));
      args.push('--result', result);
    }
    const id = publishedId(await segserve(args));
    const record = await world.waitDecision(id, undefined, 540_000);
    expect(record, record.reason).toMatchObject({ status: 'rejected', stage, reason_code: code, version, stable: { version: '2' } });
    expect(record.reason).toMatch(reason);
  }, 600_000);
});
