// Cost claims verified relative to the stable (issue 12): a result of the second form carries
// the stable measured in the same run, so latency and memory are claimed as ratios. Results
// "measured on another machine" — every cost figure of both sides scaled by one factor, 0.5
// and 2 — go through the real intake, the real local driver and the real verifier (paired
// measurement of candidate and stable): accepted when the candidate is better, refused when it
// is not, and a ratio that does not reproduce here is caught. A first-form result with the same
// figures is still judged on its absolute claims.
import { mkdir, readFile, symlink } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ExperimentResult, RolloutState } from '@segserve/proto';
import { LocalDeployer } from '../../../services/promoter/src/adapters/local-deployer.js';
import { modelResolver } from '../../../services/promoter/src/adapters/local-models.js';
import { parsePolicy } from '../../../services/promoter/src/domain/policy.js';
import { createVerifier } from '../../../services/promoter/src/verify/index.js';
import { LocalInferenceSandbox } from '../../../services/promoter/src/verify/sandbox.js';
import { SEGSERVE_BIN, tempDir, type TempDir } from '../../helpers/process.js';
import { FIXTURE_MODELS, TINY_GOLDEN, VerifyThenStopRunner, startWorld, type World } from './support.js';

const COMMAND = [process.execPath, SEGSERVE_BIN, 'inference'];
const policy = parsePolicy({
  model: 'tiny-seg',
  objectives: [
    { metric: 'miou', better: 'higher', tolerance: 0.0001 },
    // The tiny models run in a few ms: wide tolerances, since only the ratio logic is under test.
    { metric: 'latency_ms_p95', better: 'lower', tolerance: 1, machine_bound: true },
    { metric: 'peak_rss_mb', better: 'lower', tolerance: 0.5, machine_bound: true },
  ],
  limits: { miou_min: 0.5, latency_ms_p95: 10_000, peak_rss_mb: 4_000 },
  min_improvement: { miou: 0.0001, latency_ms_p95: 0.99, peak_rss_mb: 0.99 },
  verify: { golden: true, repeats: 5, claim_tolerance: { miou: 0.01, latency_ms_p95: 0.5 } },
});
const policies = new Map([[policy.model, policy]]);

let world: World;
let dir: TempDir;
let deployer: LocalDeployer;
let stableSha = '';

async function sha(version: string): Promise<string> {
  return (JSON.parse(await readFile(path.join(FIXTURE_MODELS, 'tiny-seg', version, 'model.json'), 'utf8')) as { sha256: string }).sha256;
}

beforeAll(async () => {
  world = await startWorld({ policies: [policy] });
  dir = await tempDir('segserve-relative-');
  const goldenRoot = path.join(dir.path, 'golden-root');
  await mkdir(path.join(goldenRoot, 'tiny-seg'), { recursive: true });
  await symlink(TINY_GOLDEN, path.join(goldenRoot, 'tiny-seg', 'golden'));
  stableSha = await sha('2');
  const state: RolloutState = { model: 'tiny-seg', stable: { version: '2', sha256: stableSha, target: 'ipv4:127.0.0.1:1' }, canary: null, phase: 'Succeeded', updated_at: new Date().toISOString(), revision: 1 };
  await world.objects.rollouts.put('tiny-seg', JSON.stringify(state));
  const env = { PATH: process.env['PATH'] ?? '' };
  const resolve = modelResolver({ roots: [FIXTURE_MODELS] });
  deployer = await LocalDeployer.create({ command: COMMAND, env, resolve, stateDir: path.join(dir.path, 'state'), log: world.log });
  const sandbox = new LocalInferenceSandbox({ command: COMMAND, env, resolve, logDir: dir.path });
  const verifier = createVerifier({ policies, goldenRoot, rollouts: world.objects.rollouts, deployer, sandbox, log: world.log });
  await world.startIntake(new VerifyThenStopRunner(deployer, verifier), { policies, verifications: verifier });
});

afterAll(async () => {
  await deployer?.close();
  await world?.[Symbol.asyncDispose]();
  await dir?.[Symbol.asyncDispose]();
});

/**
 * v1 (mIoU 0.9729) against the stable v2 (0.9723), as measured on a machine whose costs are
 * `factor` times this one's; `latencyRatio` is the claimed candidate/stable latency.
 */
async function secondForm(factor: number, latencyRatio: number, tag: string): Promise<ExperimentResult> {
  const base = await world.result('tiny-seg', '1', { miou: 0.9729, latency_ms_p95: 20 * latencyRatio * factor, peak_rss_mb: 120 * factor });
  const baseline = { version: '2', sha256: stableSha, metrics: { miou: 0.9723, latency_ms_p95: 20 * factor, peak_rss_mb: 120 * factor }, intervals: { latency_ms_p95: [latencyRatio * 0.9, latencyRatio * 1.1] as [number, number] }, pairs: 30 };
  return { ...base, id: `${base.id}-${tag}`, schema_version: 2, baseline };
}

describe('results measured on another machine (both sides × the same factor)', () => {
  it.each([0.5, 2])('× %d: a better candidate is verified and promoted; the decision shows claimed ratio, measured ratio and band', async (factor) => {
    const result = await secondForm(factor, 1, `better-${factor * 10}`);
    await world.publish(result);
    const decided = await world.waitDecision(result.id, undefined, 180_000);
    expect(decided).toMatchObject({ status: 'promoted', claimed: result.metrics });
    const verification = (decided.details as { verification?: { claims: { metric: string; kind: string; claimed: number; band: { high: number }; interval: { low: number; high: number } }[]; measured_ratios: Record<string, { ratio: number; low: number; high: number; samples: number }> } }).verification;
    expect(verification?.claims.find((c) => c.metric === 'latency_ms_p95')).toMatchObject({ kind: 'ratio', claimed: expect.closeTo(1, 9), band: { high: expect.closeTo(1.5, 9) } });
    expect(verification?.measured_ratios['latency_ms_p95']?.samples).toBe(30);
    expect(decided.details).toMatchObject({ claimed_ratios: { latency_ms_p95: { ratio: expect.closeTo(1, 9) } } });
  });

  it.each([0.5, 2])('× %d: a candidate that claims three times the stable\'s latency is refused on its claims', async (factor) => {
    const result = await secondForm(factor, 3, `costlier-${factor * 10}`);
    await world.publish(result);
    const decided = await world.waitDecision(result.id, undefined, 180_000);
    expect(decided).toMatchObject({ status: 'rejected', stage: 'policy', reason_code: 'worse_than_stable' });
    expect(decided.reason).toMatch(/latency_ms_p95 ×3.00 \(90 % interval ×2.70–×3.30, 30 pairs\) of the stable is worse than the tolerance 100%/);
  });

  it('a claimed ratio this machine does not reproduce (twenty times faster than the stable) is rejected at verification', async () => {
    // The tiny models take a few ms, so their measured ratio spreads widely: the lie must be gross.
    const result = await secondForm(2, 0.05, 'lie');
    await world.publish(result);
    const decided = await world.waitDecision(result.id, undefined, 180_000);
    expect(decided).toMatchObject({ status: 'rejected', stage: 'verification', reason_code: 'claim_not_reproduced' });
    expect(decided.reason).toMatch(/latency_ms_p95 measured ×[\d.]+ \(90 % interval ×[\d.]+–×[\d.]+, 30 pairs\) of the stable against a claimed ×0.05 \(tolerance 50%: up to ×0.08\)/);
  });

  it('the same figures in the first form are still judged as absolute claims', async () => {
    const second = await secondForm(2, 1, 'first-form');
    const { baseline: _b, schema_version: _v, ...first } = second;
    const result: ExperimentResult = { ...first, id: `${second.id}-v1`, metrics: { ...first.metrics, latency_ms_p95: 0.001 } };
    await world.publish(result);
    const decided = await world.waitDecision(result.id, undefined, 180_000);
    expect(decided).toMatchObject({ status: 'rejected', stage: 'verification', reason_code: 'claim_not_reproduced' });
    expect(decided.reason).toMatch(/latency_ms_p95 measured [\d.]+ against a claimed 0.001/);
  });

  it('a baseline that is not the stable is refused before anything runs', async () => {
    const result = await secondForm(1, 1, 'other-baseline');
    const other = { ...result, id: `${result.id}-x`, baseline: { ...(result.baseline as NonNullable<ExperimentResult['baseline']>), version: '1', sha256: await sha('1') } };
    await world.publish(other);
    expect(await world.waitDecision(other.id)).toMatchObject({ status: 'rejected', stage: 'policy', reason_code: 'baseline_not_stable' });
  });
});
