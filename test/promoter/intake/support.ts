// Shared by the intake tests: a real nats-server with the NATS objects (docs/architecture.md#nats), signing keys, results
// for the tiny fixture models, a scripted rollout runner, and waiting on decision records.
import path from 'node:path';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect, headers, type NatsConnection } from '@nats-io/transport-node';
import { EXPERIMENT_HEADERS, NATS_NAMES, isTerminalDecision, type DecisionRecord, type ExperimentResult } from '@segserve/proto';
import { createLogger, goldenSetDigest, type Logger } from '@segserve/runtime';
import { DEFAULT_NATS_LIMITS, ensureNatsObjects, intakeConsumerName, type NatsLimits, type NatsObjects } from '../../../services/promoter/src/adapters/nats-setup.js';
import { DecisionStore } from '../../../services/promoter/src/adapters/decision-store.js';
import { ModelRegistry } from '../../../services/promoter/src/adapters/object-store.js';
import { generateSigningKeys, signResult, signingKeyFromSeed } from '../../../services/promoter/src/adapters/signing.js';
import { defaultExperimentId } from '../../../services/promoter/src/domain/experiment-result.js';
import { parsePolicy, type Policy } from '../../../services/promoter/src/domain/policy.js';
import type { LocalDeployer } from '../../../services/promoter/src/adapters/local-deployer.js';
import type { Candidate, CandidateVerifier, RolloutOutcome, RolloutRunner } from '../../../services/promoter/src/domain/ports.js';
import { createIntake, type Intake, type IntakeOptions } from '../../../services/promoter/src/intake/intake.js';
import { startNats, type NatsServer } from '../../helpers/nats.js';
import { REPO_ROOT, SEGSERVE_BIN, spawnProcess, waitFor } from '../../helpers/process.js';

export const FIXTURE_MODELS = path.join(REPO_ROOT, 'test', 'fixtures', 'models');
export const TINY_GOLDEN = path.join(REPO_ROOT, 'test', 'fixtures', 'golden-tiny');
export const TEST_NATS_LIMITS: NatsLimits = { ...DEFAULT_NATS_LIMITS, modelsMaxBytes: 512 * 1024 * 1024, experimentsMaxBytes: 64 * 1024 * 1024, eventsMaxBytes: 64 * 1024 * 1024 };

/** A policy for the tiny fixtures: mIoU decides; latency and memory only within wide limits. */
export function tinyPolicy(model = 'tiny-seg', overrides: Record<string, unknown> = {}): Policy {
  return parsePolicy({
    model,
    objectives: [
      { metric: 'miou', better: 'higher', tolerance: 0.0001 },
      { metric: 'latency_ms_p95', better: 'lower', tolerance: 2, relative: true },
      { metric: 'peak_rss_mb', better: 'lower', tolerance: 1, relative: true },
    ],
    limits: { miou_min: 0.5, latency_ms_p95: 10_000, peak_rss_mb: 4_000 },
    min_improvement: { miou: 0.0001, latency_ms_p95: 0.99, peak_rss_mb: 0.99 },
    verify: { golden: true, claim_tolerance: { miou: 0.01, latency_ms_p95: 50 } },
    ...overrides,
  });
}

/** A logger that keeps its lines (printed by a failing test's output when useful). */
export function memoryLogger(): Logger & { lines: string[] } {
  const lines: string[] = [];
  return Object.assign(createLogger({ service: 'promoter', level: 'debug', write: (l) => lines.push(l.trimEnd()) }), { lines });
}

export interface Gate {
  readonly promise: Promise<void>;
  open(): void;
}

export function gate(): Gate {
  let open!: () => void;
  const promise = new Promise<void>((resolve) => (open = resolve));
  return { promise, open };
}

/**
 * A rollout runner test double: records each call and answers with `answer` (promoted by
 * default). The real runner is the rollout side's; the intake only needs its contract.
 */
export class ScriptedRunner implements RolloutRunner {
  readonly calls: Candidate[] = [];
  readonly started: string[] = [];
  constructor(private readonly answer: (c: Candidate, hooks: { working: () => void; signal: AbortSignal }) => Promise<RolloutOutcome> | RolloutOutcome = () => ({ outcome: 'promoted', reason: 'promoted by the scripted runner' })) {}

  async run(candidate: Candidate, hooks: { readonly working: () => void; readonly signal: AbortSignal }): Promise<RolloutOutcome> {
    this.calls.push(candidate);
    this.started.push(candidate.id);
    return this.answer(candidate, hooks);
  }
}

/**
 * Verification through the intake: the candidate deployed as a canary by the real local
 * driver, verified, the canary removed. (The canary itself is the rollout side's; this runner
 * stops after verification and reports `promoted` for a verified candidate.)
 */
export class VerifyThenStopRunner implements RolloutRunner {
  constructor(
    private readonly deployer: LocalDeployer,
    private readonly verifier: CandidateVerifier,
  ) {}

  async run(c: Candidate, hooks: { readonly working: () => void; readonly signal: AbortSignal }): Promise<RolloutOutcome> {
    await this.deployer.deployCanary(c.ref);
    try {
      const target = await waitFor(
        async () => {
          const r = await this.deployer.readiness(c.ref.model, 'canary');
          if (r.state === 'failed') throw new Error(r.reason);
          return r.state === 'ready' ? r.target : undefined;
        },
        { timeoutMs: 180_000, what: 'the canary' },
      );
      const report = await this.verifier.verify(c, target, hooks.signal);
      return report.ok ? { outcome: 'promoted', reason: report.reason } : { outcome: 'rejected', reasonCode: report.reasonCode, reason: report.reason, verification: report };
    } finally {
      await this.deployer.removeCanary(c.ref.model);
    }
  }
}

export interface World extends AsyncDisposable {
  readonly nats: NatsServer;
  readonly nc: NatsConnection;
  readonly objects: NatsObjects;
  readonly registry: ModelRegistry;
  readonly decisions: DecisionStore;
  readonly keys: { readonly seed: string; readonly publicKey: string };
  readonly goldenSha: string;
  readonly log: Logger & { lines: string[] };
  /** Uploads a fixture model version and returns a valid, unsigned result for it. */
  result(model: string, version: string, metrics?: Record<string, number>, extra?: Partial<ExperimentResult>): Promise<ExperimentResult>;
  /** Publishes a result signed with `seed` (default: the trusted key); `tamper` edits the message. */
  publish(result: ExperimentResult, opts?: PublishTweaks): Promise<{ seq: number; duplicate: boolean }>;
  startIntake(runner: RolloutRunner, options?: Partial<IntakeOptions>): Promise<Intake>;
  waitDecision(key: string, predicate?: (r: DecisionRecord) => boolean, timeoutMs?: number): Promise<DecisionRecord>;
  consumerInfo(model: string): Promise<{ pending: number; ackPending: number; redelivered: number; delivered: number }>;
}

export interface PublishTweaks {
  readonly seed?: string;
  readonly body?: string;
  readonly subject?: string;
  readonly msgId?: string | null;
  readonly signature?: string | null;
  readonly signer?: string | null;
}

export async function startWorld(options: { limits?: NatsLimits; policies?: Policy[] } = {}): Promise<World> {
  const nats = await startNats();
  const nc = await connect({ servers: nats.url });
  const objects = await ensureNatsObjects(nc, options.limits ?? TEST_NATS_LIMITS);
  const registry = new ModelRegistry(objects.models);
  const keys = generateSigningKeys();
  const goldenSha = await goldenSetDigest(TINY_GOLDEN);
  const log = memoryLogger();
  const intakes: Intake[] = [];
  const policies = new Map((options.policies ?? [tinyPolicy('tiny-seg'), tinyPolicy('tiny-prob')]).map((p) => [p.model, p]));
  const decisions = new DecisionStore(objects.decisions);

  return {
    nats,
    nc,
    objects,
    registry,
    decisions,
    keys,
    goldenSha,
    log,
    async result(model, version, metrics = { miou: 0.97, latency_ms_p95: 20, peak_rss_mb: 150 }, extra = {}) {
      const up = await registry.upload(path.join(FIXTURE_MODELS, model, version));
      const content = {
        model,
        version,
        artifact: { sha256: up.onnx.sha256, size: up.onnx.size },
        metrics,
        golden: { sha256: goldenSha },
        source: { commit: 'test', pipeline: 'test', job: 'test' },
      };
      return { id: defaultExperimentId(content), ...content, created_at: new Date().toISOString(), ...extra };
    },
    async publish(result, t = {}) {
      const h = headers();
      const signed = signResult(result, signingKeyFromSeed(t.seed ?? keys.seed));
      const sig = t.signature === undefined ? signed.signature : t.signature;
      const signer = t.signer === undefined ? signed.signer : t.signer;
      if (sig !== null) h.set(EXPERIMENT_HEADERS.signature, sig);
      if (signer !== null) h.set(EXPERIMENT_HEADERS.signer, signer);
      const msgId = t.msgId === undefined ? result.id : t.msgId;
      const ack = await objects.js.publish(t.subject ?? NATS_NAMES.experimentsSubject(result.model), t.body ?? JSON.stringify(result), {
        headers: h,
        ...(msgId !== null ? { msgID: msgId } : {}),
      });
      return { seq: ack.seq, duplicate: ack.duplicate };
    },
    async startIntake(runner, o = {}) {
      const intake = createIntake({ nc, objects, policies, signers: [keys.publicKey], runner, log, consumer: { ackWaitMs: 5_000, maxDeliver: 5 }, ...o });
      await intake.start();
      intakes.push(intake);
      return intake;
    },
    async waitDecision(key, predicate = isTerminalDecision, timeoutMs = 60_000) {
      return waitFor(
        async () => {
          const stored = await decisions.get(key);
          return stored && predicate(stored.record) ? stored.record : undefined;
        },
        { timeoutMs, intervalMs: 100, what: `decision ${key}` },
      );
    },
    async consumerInfo(model) {
      const jsm = await jetstreamManager(nc);
      const info = await jsm.consumers.info(NATS_NAMES.experimentsStream, intakeConsumerName(model));
      return { pending: info.num_pending, ackPending: info.num_ack_pending, redelivered: info.num_redelivered, delivered: info.delivered.stream_seq };
    },
    async [Symbol.asyncDispose]() {
      for (const i of intakes) await i.stop().catch(() => undefined);
      await nc.close().catch(() => undefined);
      await nats[Symbol.asyncDispose]();
    },
  };
}

/** Runs the `segserve` CLI against this world's NATS with its signing key; its output, or an error naming the exit code. */
export async function runSegserve(world: World, args: readonly string[]): Promise<string> {
  const p = spawnProcess(process.execPath, [SEGSERVE_BIN, ...args], { name: `segserve ${args[0] ?? ''}`, env: { CI: 'true', SEGSERVE_NATS_URL: world.nats.url, SEGSERVE_SIGNING_SEED: world.keys.seed } });
  const code = await p.exited;
  if (code !== 0) throw new Error(`segserve ${args.join(' ')} exited ${String(code)}:\n${p.output()}`);
  return p.output();
}
