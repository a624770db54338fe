// Publishing end to end through the real `segserve` CLI: keys, upload to the object store,
// the signed result on EXPERIMENTS, an inference process loading the version from the object
// store, the intake deciding it, and `segserve decisions` showing it.
import { readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jetstreamManager } from '@nats-io/jetstream';
import { EXPERIMENT_HEADERS, NATS_NAMES, decodeExperimentResult, type DecisionRecord } from '@segserve/proto';
import { verifyResultSignature } from '../../../services/promoter/src/adapters/signing.js';
import type { Intake } from '../../../services/promoter/src/intake/intake.js';
import { loadGoldenSet } from '@segserve/runtime';
import { runGoldenSet } from '../../../services/promoter/src/verify/golden-run.js';
import { SEGSERVE_BIN, spawnProcess, tempDir, waitFor, type TempDir } from '../../helpers/process.js';
import { FIXTURE_MODELS, ScriptedRunner, TINY_GOLDEN, startWorld, type World } from './support.js';

let world: World;
let dir: TempDir;
let intake: Intake;
const runner = new ScriptedRunner();

beforeAll(async () => {
  world = await startWorld();
  dir = await tempDir('segserve-publish-');
  intake = await world.startIntake(runner);
});

afterAll(async () => {
  await world?.[Symbol.asyncDispose]();
  await dir?.[Symbol.asyncDispose]();
});

async function segserve(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; out: string }> {
  const p = spawnProcess(process.execPath, [SEGSERVE_BIN, ...args], { name: `segserve ${args[0] ?? ''}`, env: { CI: 'true', ...env } });
  const code = await p.exited;
  return { code, out: p.output() };
}

describe('segserve keys / publish / decisions', () => {
  let publicKey = '';
  let seedFile = '';

  it('keys generate writes a 0600 seed file and prints the public key', async () => {
    seedFile = path.join(dir.path, 'publisher.seed');
    const { code, out } = await segserve(['keys', 'generate', '--out', seedFile]);
    expect(code).toBe(0);
    publicKey = /public key: (U[A-Z2-7]{55})/.exec(out)?.[1] ?? '';
    expect(publicKey).not.toBe('');
    expect((await stat(seedFile)).mode & 0o777).toBe(0o600);
    expect((await readFile(seedFile, 'utf8')).trim()).toMatch(/^SU[A-Z2-7]{56}$/);
    expect(await segserve(['keys', 'generate', '--out', seedFile])).toMatchObject({ code: 2 }); // no silent overwrite
    const again = await segserve(['keys', 'public', '--seed-file', seedFile]);
    expect(again.out.trim()).toBe(publicKey);
  });

  it('publish refuses to run without a key, with a seed flag, or with an unknown SEGSERVE_ variable', async () => {
    const model = path.join(FIXTURE_MODELS, 'tiny-seg', '1');
    const noKey = await segserve(['publish', '--model', model, '--golden', TINY_GOLDEN], { SEGSERVE_NATS_URL: world.nats.url });
    expect(noKey.code).toBe(2);
    expect(noKey.out).toMatch(/no signing key: set SEGSERVE_SIGNING_SEED or pass --seed-file/);
    const flag = await segserve(['publish', '--model', model, '--seed', 'SUxxx'], { SEGSERVE_NATS_URL: world.nats.url });
    expect(flag.code).toBe(2);
    expect(flag.out).toMatch(/Unknown option '--seed'/);
    const typo = await segserve(['publish', '--model', model, '--seed-file', seedFile], { SEGSERVE_NATS_URL: world.nats.url, SEGSERVE_SIGNING_SEEED: 'x' });
    expect(typo.code).toBe(2);
    expect(typo.out).toMatch(/SEGSERVE_SIGNING_SEEED: unknown variable/);
  });

  it('publish uploads the version and publishes a signed result the intake decides', async () => {
    const model = path.join(FIXTURE_MODELS, 'tiny-seg', '2');
    const metrics = path.join(dir.path, 'metrics.json');
    await writeFile(metrics, JSON.stringify({ miou: 0.972, latency_ms_p95: 14, peak_rss_mb: 140 }));
    const seed = (await readFile(seedFile, 'utf8')).trim();
    const { code, out } = await segserve(['publish', '--model', model, '--result', metrics, '--golden', TINY_GOLDEN], { SEGSERVE_NATS_URL: world.nats.url, SEGSERVE_SIGNING_SEED: seed });
    expect(code).toBe(0);
    expect(out).toContain('uploaded segserve_models/tiny-seg/2/model.onnx');
    expect(out).toMatch(/published experiment (tiny-seg-2-[0-9a-f]{12}) to stream EXPERIMENTS \(seq \d+, subject segserve\.experiments\.tiny-seg\)/);
    expect(out).toContain('segserve rollout watch tiny-seg');
    expect(out).not.toContain('uploading'); // quiet in CI
    const id = /published experiment (\S+)/.exec(out)?.[1] as string;

    // On the stream: the result, its Nats-Msg-Id and a signature by the publisher's key.
    const jsm = await jetstreamManager(world.nc);
    const stored = await jsm.streams.getMessage(NATS_NAMES.experimentsStream, { last_by_subj: NATS_NAMES.experimentsSubject('tiny-seg') });
    if (!stored) throw new Error('no result on the stream');
    const result = decodeExperimentResult(stored.data);
    expect(result).toMatchObject({ id, model: 'tiny-seg', version: '2', metrics: { miou: 0.972 }, golden: { sha256: world.goldenSha } });
    expect(stored.header.get(EXPERIMENT_HEADERS.msgId)).toBe(id);
    expect(verifyResultSignature(result, { signature: stored.header.get(EXPERIMENT_HEADERS.signature), signer: stored.header.get(EXPERIMENT_HEADERS.signer) }, new Set([publicKey])).ok).toBe(true);
    // In the object store: exactly the bytes of the directory.
    const onnx = await readFile(path.join(model, 'model.onnx'));
    expect(result.artifact.size).toBe(onnx.length);
    const hashed = await world.registry.hashModel('tiny-seg', '2');
    expect(hashed?.size).toBe(onnx.length);
    expect(hashed?.sha256).toBe(result.artifact.sha256);

    // The intake (trusting only the test's own key) rejects it as signed by an unknown signer:
    // unauthenticated, so counted and kept in its bounded record, never in the decisions bucket…
    const rejected = await waitFor(() => Promise.resolve(intake.unverified.summary().latest.find((r) => r.claimed_id === id)), { what: 'the rejection counted' });
    expect(rejected).toMatchObject({ reason_code: 'signer_unknown', signer: publicKey });

    // …so `segserve decisions` has nothing for it.
    const table = await segserve(['decisions', 'tiny-seg'], { SEGSERVE_NATS_URL: world.nats.url });
    expect(table.code).toBe(0);
    expect(table.out).toBe('no decisions yet\n');
  });

  it('publishing again with the trusted key: same artifact not re-sent, the result promoted by the runner', async () => {
    const model = path.join(FIXTURE_MODELS, 'tiny-seg', '2');
    const { code, out } = await segserve(['publish', '--model', model, '--golden', TINY_GOLDEN, '--result', path.join(dir.path, 'metrics.json'), '--id', 'tiny-seg-2-trusted'], {
      SEGSERVE_NATS_URL: world.nats.url,
      SEGSERVE_SIGNING_SEED: world.keys.seed,
    });
    expect(code).toBe(0);
    expect(out).toContain('already stored segserve_models/tiny-seg/2/model.onnx');
    expect(await world.waitDecision('tiny-seg-2-trusted')).toMatchObject({ status: 'promoted', version: '2' });
    expect(runner.calls.map((c) => c.id)).toEqual(['tiny-seg-2-trusted']);

    // `segserve decisions` shows it, claimed figures and all.
    const table = await segserve(['decisions', 'tiny-seg'], { SEGSERVE_NATS_URL: world.nats.url });
    expect(table.code).toBe(0);
    expect(table.out).toMatch(/^ID\s+VERSION\s+mIoU \(claimed → measured\)/);
    expect(table.out).toMatch(/tiny-seg-2-trusted\s+2\s+0.972\s+14\s+140\s+promoted\s+promoted\s/);
    const json = await segserve(['decisions', 'tiny-seg', '--json'], { SEGSERVE_NATS_URL: world.nats.url });
    expect((JSON.parse(json.out) as DecisionRecord[]).map((r) => r.key)).toEqual(['tiny-seg-2-trusted']);
  });
});

describe('segserve eval --against, then publish: a result of the second form', () => {
  it('measures the candidate paired with the stable, writes the claims, and publish sends them with the baseline', async () => {
    const candidate = path.join(FIXTURE_MODELS, 'tiny-seg', '1');
    const stable = path.join(FIXTURE_MODELS, 'tiny-seg', '2');
    const out = path.join(dir.path, 'paired.json');
    const evaluated = await segserve(['eval', '--model', candidate, '--against', stable, '--golden', TINY_GOLDEN, '--passes', '2', '--out', out]);
    expect(evaluated.code, evaluated.out).toBe(0);
    expect(evaluated.out).toMatch(/candidate tiny-seg\/1 {2}against {2}stable tiny-seg\/2 {3}\(6 golden images × 2 passes = 12 pairs, alternating\)/);
    expect(evaluated.out).toMatch(/latency p95\s+[\d.]+ ms\s+[\d.]+ ms\s+×[\d.]+ \(90 % interval ×[\d.]+–×[\d.]+, 12 pairs\)/);
    const claims = JSON.parse(await readFile(out, 'utf8')) as { schema_version: number; metrics: Record<string, number>; baseline: { version: string; sha256: string; metrics: Record<string, number>; intervals: Record<string, [number, number]>; pairs: number }; golden: { sha256: string } };
    const stableSha = (JSON.parse(await readFile(path.join(stable, 'model.json'), 'utf8')) as { sha256: string }).sha256;
    expect(claims).toMatchObject({ schema_version: 2, baseline: { version: '2', sha256: stableSha, pairs: 12 }, golden: { sha256: world.goldenSha } });
    // mIoU is deterministic: the same as the single-model evaluation.
    expect(claims.metrics['miou']).toBeCloseTo(0.9729, 3);
    expect(claims.baseline.metrics['miou']).toBeCloseTo(0.9723, 3);
    expect(claims.baseline.intervals['latency_ms_p95']?.[0]).toBeLessThanOrEqual(claims.metrics['latency_ms_p95']! / claims.baseline.metrics['latency_ms_p95']! + 1e-3);

    const published = await segserve(['publish', '--model', candidate, '--result', out, '--golden', TINY_GOLDEN, '--id', 'tiny-seg-1-paired'], { SEGSERVE_NATS_URL: world.nats.url, SEGSERVE_SIGNING_SEED: world.keys.seed });
    expect(published.code, published.out).toBe(0);
    const decided = await world.waitDecision('tiny-seg-1-paired');
    expect(decided).toMatchObject({ status: 'promoted', claimed: claims.metrics });
    expect(runner.calls.at(-1)).toMatchObject({ id: 'tiny-seg-1-paired', baseline: claims.baseline });
    expect(decided.details).toMatchObject({ baseline: claims.baseline, claimed_ratios: { latency_ms_p95: { samples: 12 } } });
  });

  it('refuses what cannot be compared', async () => {
    const same = await segserve(['eval', '--model', path.join(FIXTURE_MODELS, 'tiny-seg', '1'), '--against', path.join(FIXTURE_MODELS, 'tiny-seg', '1'), '--golden', TINY_GOLDEN]);
    expect(same.code).toBe(1);
    expect(same.out).toMatch(/have the same model.onnx: nothing to compare/);
    const other = await segserve(['eval', '--model', path.join(FIXTURE_MODELS, 'tiny-seg', '1'), '--against', path.join(FIXTURE_MODELS, 'tiny-prob', '1'), '--golden', TINY_GOLDEN]);
    expect(other.code).toBe(1);
    expect(other.out).toMatch(/is model 'tiny-seg' but .* is 'tiny-prob'/);
    expect((await segserve(['eval', '--against', 'x'])).code).toBe(2);
  });
});

describe('loading a published version from the object store', () => {
  it('an inference process started on segserve_models/tiny-seg/2 serves the same masks as the directory', async () => {
    const manifest = JSON.parse(await readFile(path.join(FIXTURE_MODELS, 'tiny-seg', '2', 'model.json'), 'utf8')) as { sha256: string };
    await using cache = await tempDir('segserve-model-cache-');
    await using inference = spawnProcess(process.execPath, [SEGSERVE_BIN, 'inference'], {
      name: 'inference (object store)',
      env: {
        SEGSERVE_NATS_URL: world.nats.url,
        SEGSERVE_MODEL_NAME: 'tiny-seg',
        SEGSERVE_MODEL_VERSION: '2',
        SEGSERVE_MODEL_SHA256: manifest.sha256,
        SEGSERVE_MODEL_CACHE_DIR: cache.path,
        SEGSERVE_GRPC_PORT: '0',
        SEGSERVE_METRICS_PORT: '0',
      },
    });
    const serving = await inference.waitForStartup('inference', 120_000);
    expect(serving.version).toBe('2');
    const measured = await runGoldenSet({
      target: `ipv4:127.0.0.1:${serving.grpc_port}`,
      model: 'tiny-seg',
      version: '2',
      golden: await loadGoldenSet(TINY_GOLDEN),
      metricsEndpoints: [`127.0.0.1:${serving.metrics_port}`],
      repeats: 1,
      requestDeadlineMs: 60_000,
      signal: new AbortController().signal,
    });
    expect(measured.metrics['miou']).toBeGreaterThan(0.9);
    // Same bytes downloaded by the promoter's registry.
    await using dl = await tempDir('segserve-download-');
    const got = await world.registry.download('tiny-seg', '2', manifest.sha256, dl.path);
    expect(await readFile(path.join(got, 'model.onnx'))).toEqual(await readFile(path.join(FIXTURE_MODELS, 'tiny-seg', '2', 'model.onnx')));
  });
});

