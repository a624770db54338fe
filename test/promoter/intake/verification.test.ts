// Verification on the golden set with real inference processes (docs/architecture.md#promotion,
// docs/reliability.md item 27): measured against claimed, the stable measured the same way in a sandbox and cached by
// digest, and through the intake a claim that does not reproduce is rejected with both figures.
import { mkdir, readFile, symlink } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RolloutState } from '@segserve/proto';
import { LocalDeployer } from '../../../services/promoter/src/adapters/local-deployer.js';
import { modelResolver } from '../../../services/promoter/src/adapters/local-models.js';
import type { Candidate, CandidateVerifier, ModelRef } from '../../../services/promoter/src/domain/ports.js';
import { createVerifier } from '../../../services/promoter/src/verify/index.js';
import { LocalInferenceSandbox, type InferenceSandbox, type SandboxInstance } from '../../../services/promoter/src/verify/sandbox.js';
import { SEGSERVE_BIN, tempDir, type TempDir } from '../../helpers/process.js';
import { FIXTURE_MODELS, TINY_GOLDEN, VerifyThenStopRunner, startWorld, tinyPolicy, type World } from './support.js';

const COMMAND = [process.execPath, SEGSERVE_BIN, 'inference'];
// Latency of the tiny models is a few ms and noisy on a shared 2-core machine: these tests judge
// mIoU (deterministic) and leave latency and memory to wide tolerances.
const policy = tinyPolicy('tiny-seg', {
  objectives: [
    { metric: 'miou', better: 'higher', tolerance: 0.0001 },
    { metric: 'latency_ms_p95', better: 'lower', tolerance: 100, relative: true },
    { metric: 'peak_rss_mb', better: 'lower', tolerance: 10, relative: true },
  ],
});
const policies = new Map([[policy.model, policy]]);

let world: World;
let dir: TempDir;
let sandbox: LocalInferenceSandbox;
const starts: string[] = [];
let countingSandbox: InferenceSandbox;
let verifier: CandidateVerifier;
const open: SandboxInstance[] = [];
/** /metrics of the latest candidate process: what a deployer's metricsTargets would return. */
let candidateMetrics: readonly string[] = [];

async function ref(version: string): Promise<ModelRef> {
  const manifest = JSON.parse(await readFile(path.join(FIXTURE_MODELS, 'tiny-seg', version, 'model.json'), 'utf8')) as { sha256: string };
  return { model: 'tiny-seg', version, sha256: manifest.sha256 };
}

async function candidate(version: string, claimed: Record<string, number>, goldenSha256 = world.goldenSha): Promise<Candidate> {
  return { id: `verify-${version}-${Object.values(claimed).join('-')}`, ref: await ref(version), claimed, goldenSha256 };
}

/** The candidate's process, started here as the deployer would (no traffic). */
async function serve(version: string): Promise<SandboxInstance> {
  const instance = await sandbox.start(await ref(version), new AbortController().signal);
  open.push(instance);
  candidateMetrics = instance.metricsEndpoints;
  return instance;
}

async function setStable(version: string | null): Promise<void> {
  const stable = version ? { ...(await ref(version)), target: 'ipv4:127.0.0.1:1' } : null;
  const state: RolloutState = { model: 'tiny-seg', stable: stable && { version: stable.version, sha256: stable.sha256, target: stable.target }, canary: null, phase: 'Succeeded', updated_at: new Date().toISOString(), revision: 1 };
  await world.objects.rollouts.put('tiny-seg', JSON.stringify(state));
}

/** The verifier reads `<root>/<model>/golden`; the fixtures keep theirs at test/fixtures/golden-tiny. */
let FIXTURE_MODELS_GOLDEN_ROOT = '';

beforeAll(async () => {
  world = await startWorld({ policies: [policy] });
  dir = await tempDir('segserve-verify-');
  FIXTURE_MODELS_GOLDEN_ROOT = path.join(dir.path, 'golden-root');
  await mkdir(path.join(FIXTURE_MODELS_GOLDEN_ROOT, 'tiny-seg'), { recursive: true });
  await symlink(TINY_GOLDEN, path.join(FIXTURE_MODELS_GOLDEN_ROOT, 'tiny-seg', 'golden'));
  sandbox = new LocalInferenceSandbox({ command: COMMAND, env: { PATH: process.env['PATH'] ?? '' }, resolve: modelResolver({ roots: [FIXTURE_MODELS] }), logDir: dir.path });
  countingSandbox = {
    start: (r, signal) => {
      starts.push(r.version);
      return sandbox.start(r, signal);
    },
  };
  verifier = createVerifier({ policies, goldenRoot: FIXTURE_MODELS_GOLDEN_ROOT, rollouts: world.objects.rollouts, deployer: { metricsTargets: () => candidateMetrics }, sandbox: countingSandbox, log: world.log });
});

afterAll(async () => {
  for (const i of open) await i.close();
  await world?.[Symbol.asyncDispose]();
  await dir?.[Symbol.asyncDispose]();
});

const HONEST = { miou: 0.9729, latency_ms_p95: 1000, peak_rss_mb: 1000 };

describe('GoldenVerifier with real inference processes', () => {
  it('a first model whose claim reproduces is verified; mIoU, p95 latency and peak RSS are measured', async () => {
    await setStable(null);
    const v1 = await serve('1');
    const report = await createVerifier({ policies, goldenRoot: FIXTURE_MODELS_GOLDEN_ROOT, rollouts: world.objects.rollouts, deployer: { metricsTargets: () => v1.metricsEndpoints }, sandbox: countingSandbox, log: world.log }).verify(
      await candidate('1', HONEST),
      v1.target,
      new AbortController().signal,
    );
    expect(report).toMatchObject({ ok: true, reasonCode: 'verified', claimed: HONEST, stableMeasured: null });
    expect(report.measured['miou']).toBeCloseTo(0.9729, 3);
    expect(report.measured['latency_ms_p95']).toBeGreaterThan(0);
    expect(report.measured['peak_rss_mb']).toBeGreaterThan(30);
    expect(report.reason).toMatch(/^Verified on 6 golden images \(miou 0\.97\d*, latency_ms_p95 [\d.]+, peak_rss_mb [\d.]+\): The claimed miou, latency_ms_p95 reproduce on the golden set; there is no stable version yet/);
  });

  it('an inflated mIoU claim is rejected with the claimed and the measured figure (docs/reliability.md item 27)', async () => {
    const v1 = await serve('1');
    const report = await verifier.verify(await candidate('1', { ...HONEST, miou: 0.995 }), v1.target, new AbortController().signal);
    expect(report).toMatchObject({ ok: false, reasonCode: 'claim_not_reproduced', claimed: { miou: 0.995 } });
    expect(report.measured['miou']).toBeCloseTo(0.9729, 3);
    expect(report.reason).toMatch(/^Rejected: the claim does not reproduce on the golden set: miou measured 0\.97\d* against a claimed 0\.995 \(off by 0\.02\d*, tolerance 0\.01\)\.$/);
  });

  it('beats the stable measured alongside it, image by image (stable started in a sandbox for the run)', async () => {
    await setStable('2');
    starts.length = 0;
    const v1 = await serve('1');
    const report = await verifier.verify(await candidate('1', HONEST), v1.target, new AbortController().signal);
    expect(report).toMatchObject({ ok: true, reasonCode: 'verified' });
    expect(report.stableMeasured?.['miou']).toBeCloseTo(0.9723, 3);
    expect(report.stableMeasured?.['peak_rss_mb']).toBeGreaterThan(30);
    expect(report.reason).toMatch(/against the stable 2 measured the same way \(miou 0\.972\d*/);
    expect(report.reason).toMatch(/miou 0\.97\d* vs 0\.97\d* \(0\.000[56]\) better than the stable/);
    expect(starts).toEqual(['2']);
    expect(world.log.lines.some((l) => l.includes('measuring candidate and stable side by side'))).toBe(true);
  });

  it('cached mode measures the stable alone once per digest and reuses it', async () => {
    await setStable('2');
    starts.length = 0;
    const cached = createVerifier({ policies, goldenRoot: FIXTURE_MODELS_GOLDEN_ROOT, rollouts: world.objects.rollouts, deployer: { metricsTargets: () => candidateMetrics }, sandbox: countingSandbox, log: world.log, stableMeasurement: 'cached' });
    const v1 = await serve('1');
    const first = await cached.verify(await candidate('1', HONEST), v1.target, new AbortController().signal);
    const second = await cached.verify(await candidate('1', { ...HONEST, latency_ms_p95: 999 }), v1.target, new AbortController().signal);
    expect([first.reasonCode, second.reasonCode]).toEqual(['verified', 'verified']);
    expect(second.stableMeasured).toEqual(first.stableMeasured);
    expect(starts).toEqual(['2']);
  });

  it('no longer beats the stable → rejected with both measurements', async () => {
    await setStable('1');
    const v2 = await serve('2');
    const report = await verifier.verify(await candidate('2', { ...HONEST, miou: 0.9723 }), v2.target, new AbortController().signal);
    expect(report).toMatchObject({ ok: false, reasonCode: 'worse_than_stable' });
    expect(report.measured['miou']).toBeCloseTo(0.9723, 3);
    expect(report.stableMeasured?.['miou']).toBeCloseTo(0.9729, 3);
    expect(report.reason).toMatch(/^Not promoted: miou 0\.972\d* vs 0\.972\d* \(0\.000[56]\) is worse than the tolerance 0\.0001 — measured on the golden set against the stable 1/);
  });

  it('claims measured on another golden set cannot be checked', async () => {
    const report = await verifier.verify(await candidate('2', HONEST, 'f'.repeat(64)), 'ipv4:127.0.0.1:1', new AbortController().signal);
    expect(report).toMatchObject({ ok: false, reasonCode: 'golden_mismatch' });
  });

  it('a target that serves another version is not measured as the candidate', async () => {
    await setStable(null);
    const v2 = await serve('2');
    const report = await verifier.verify(await candidate('1', HONEST), v2.target, new AbortController().signal);
    expect(report).toMatchObject({ ok: false, reasonCode: 'verification_failed' });
    expect(report.reason).toMatch(/answered as version '2', expected '1'/);
  });
});

describe('through the intake (docs/reliability.md item 27)', () => {
  it('a result whose mIoU claim does not reproduce is rejected at verification, claimed and measured side by side', async () => {
    await setStable(null);
    await using state = await tempDir('segserve-local-deployer-');
    const deployer = await LocalDeployer.create({ command: COMMAND, env: { PATH: process.env['PATH'] ?? '' }, resolve: modelResolver({ roots: [FIXTURE_MODELS] }), stateDir: state.path, log: world.log });
    try {
      const v = createVerifier({ policies, goldenRoot: FIXTURE_MODELS_GOLDEN_ROOT, rollouts: world.objects.rollouts, deployer, sandbox: countingSandbox, log: world.log });
      await world.startIntake(new VerifyThenStopRunner(deployer, v), { policies, verifications: v });
      const inflated = await world.result('tiny-seg', '1', { ...HONEST, miou: 0.999 });
      const honest = await world.result('tiny-seg', '1', HONEST);
      await world.publish(inflated);
      await world.publish(honest);
      const rejected = await world.waitDecision(inflated.id, undefined, 180_000);
      expect(rejected).toMatchObject({ status: 'rejected', stage: 'verification', reason_code: 'claim_not_reproduced', claimed: { miou: 0.999 } });
      expect(rejected.measured?.['miou']).toBeCloseTo(0.9729, 3);
      expect(rejected.measured?.['peak_rss_mb']).toBeGreaterThan(30); // sampled from the canary's /metrics
      expect(rejected.reason).toMatch(/miou measured 0\.97\d* against a claimed 0\.999/);
      const accepted = await world.waitDecision(honest.id, undefined, 180_000);
      expect(accepted).toMatchObject({ status: 'promoted', claimed: HONEST });
      expect(accepted.measured?.['miou']).toBeCloseTo(0.9729, 3); // claimed and measured side by side
    } finally {
      await deployer.close();
    }
  });
});
