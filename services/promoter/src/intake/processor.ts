// One experiment result through the intake pipeline of docs/architecture.md#promotion, in order:
//   schema → signature → idempotency (decision create) → artifact → policy on the claims →
//   the rollout runner (verification via the CandidateVerifier, then canary …) → decision.
// Every way out ends the message: ack (decided, or already decided) or term (malformed /
// unauthenticated); a failure of the intake itself is nak'ed with a back-off and becomes an
// `intake_error` decision on its last delivery, so nothing is redelivered forever.
//
// Only signed results write `segserve_decisions`: a result rejected before its signature is
// verified is counted and sampled (UnverifiedLog), never stored one per message, so a flood of
// junk can neither fill the bucket nor slow the intake down. When the bucket itself is full or
// failing, the intake retries a few times, records the failure and moves on to the next result.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import {
  EXPERIMENT_HEADERS,
  decisionEvent,
  isTerminalDecision,
  parseModelManifest,
  type DecisionEvent,
  type DecisionRecord,
  type DecisionStable,
  type ExperimentResult,
} from '@segserve/proto';
import { DecisionConflictError, DecisionStoreError, type DecisionStore, type StoredDecision } from '../adapters/decision-store.js';
import type { ModelRegistry } from '../adapters/object-store.js';
import { verifyResultSignature } from '../adapters/signing.js';
import { judgeClaims, modelFromSubject, readResultMessage, toCandidate, type IntakeRejection } from '../domain/experiment-result.js';
import type { Policy, PolicyCode } from '../domain/policy.js';
import type { Logger, Metrics, ModelRef, RolloutOutcome, RolloutRunner, VerificationReport } from '../domain/ports.js';
import { checkArtifact } from './artifact-check.js';
import { UNKNOWN_MODEL_LABEL, type UnverifiedLog } from './unverified.js';

/** The parts of a JetStream message the intake uses (JsMsg satisfies it). */
export interface IntakeMessage {
  readonly subject: string;
  readonly seq: number;
  readonly data: Uint8Array;
  readonly info: { readonly deliveryCount: number };
  readonly headers?: { get(name: string): string } | undefined;
  working(): void;
  ackAck(): Promise<boolean>;
  term(): void;
  nak(millis?: number): void;
}

export type ResultOutcome = 'promoted' | 'rejected' | 'rolled_back' | 'duplicate' | 'retry';

export interface ResultProcessorOptions {
  readonly policies: ReadonlyMap<string, Policy>;
  readonly signers: ReadonlySet<string>;
  readonly decisions: DecisionStore;
  readonly registry: ModelRegistry;
  readonly currentStable: (model: string) => Promise<ModelRef | null>;
  /** `<root>/<model>/<version>/model.json` of stables that were never uploaded (bundled models). */
  readonly modelRoots: readonly string[];
  readonly runner: RolloutRunner;
  /** The verification report of a candidate whose outcome carries none (a promotion). */
  readonly verificationOf: (model: string, experimentId: string) => Promise<VerificationReport | null>;
  readonly publishEvent: (event: DecisionEvent) => Promise<void>;
  readonly log: Logger;
  readonly now: () => Date;
  readonly maxDeliver: number;
  /** Deliveries of a signed result while the decisions bucket fails, before giving up on it (default 3). */
  readonly storeAttempts?: number;
  /** Where results rejected before their signature is verified are counted (never the bucket). */
  readonly unverified: UnverifiedLog;
  /** How often `working()` extends the ack deadline while a result is being processed (ms). */
  readonly heartbeatMs: number;
  /** After a decision is stored and announced, before the ack (observability; tests crash here). */
  readonly onDecision?: (record: DecisionRecord) => void | Promise<void>;
  /** Counts the signed results the intake decides itself (rejected before the runner, duplicate). */
  readonly onOutcome?: (model: string, outcome: 'rejected' | 'duplicate') => void;
}

interface Received {
  readonly subject: string;
  readonly stream_seq: number;
  readonly received_at: string;
}

export class ResultProcessor {
  readonly knownModels: ReadonlySet<string>;

  constructor(private readonly o: ResultProcessorOptions) {
    this.knownModels = new Set(o.policies.keys());
  }

  async process(msg: IntakeMessage, signal: AbortSignal): Promise<ResultOutcome> {
    const heartbeat = setInterval(() => msg.working(), this.o.heartbeatMs);
    let stored: StoredDecision | undefined;
    try {
      const received: Received = { subject: msg.subject, stream_seq: msg.seq, received_at: this.o.now().toISOString() };
      const header = (name: string): string | undefined => msg.headers?.get(name) || undefined;
      const read = readResultMessage({ subject: msg.subject, msgId: header(EXPERIMENT_HEADERS.msgId), body: msg.data }, this.knownModels);
      if (!read.ok) return this.rejectUnverified(msg, received, read.rejection, null);
      const result = read.value;
      const signature = verifyResultSignature(result, { signature: header(EXPERIMENT_HEADERS.signature), signer: header(EXPERIMENT_HEADERS.signer) }, this.o.signers);
      if (!signature.ok) return this.rejectUnverified(msg, received, signature.rejection, result);

      // Idempotency: exactly one writer creates the record of an experiment id.
      const created = await this.o.decisions.create(this.record(result, signature.value, received));
      stored = created;
      if (!created.created) {
        if (isTerminalDecision(created.record)) {
          this.o.log.info('result already decided; ignored', { id: result.id, status: created.record.status, seq: msg.seq });
          await msg.ackAck();
          this.o.onOutcome?.(result.model, 'duplicate');
          return 'duplicate';
        }
        // In progress: a redelivery after a crash. Take it over (CAS, so only one intake does).
        const resumed = { ...created.record, attempts: created.record.attempts + 1 };
        try {
          stored = { record: resumed, revision: await this.o.decisions.update(resumed, created.revision) };
        } catch (err) {
          if (!(err instanceof DecisionConflictError)) throw err;
          msg.nak(5_000);
          return 'retry';
        }
        this.o.log.info('resuming a result in progress', { id: result.id, stage: resumed.stage, attempts: resumed.attempts });
        if (resumed.stage === 'rollout') return await this.runRollout(msg, stored, result, signal);
      }

      const artifact = await checkArtifact(this.o.registry, result);
      if (!artifact.ok) return await this.decide(msg, stored, this.rejection(stored.record, artifact.rejection));

      const policy = this.o.policies.get(result.model) as Policy;
      const stable = await this.o.currentStable(result.model);
      if (stable && stable.sha256 === result.artifact.sha256) {
        return await this.decide(
          msg,
          stored,
          this.rejection(stored.record, { stage: 'policy', code: 'same_as_stable', reason: `Rejected: ${result.version} has the same model.onnx as the stable ${stable.version}.` }),
        );
      }
      const stableClaims = stable ? await this.stableClaims(stable) : null;
      const stableRecord: DecisionStable | null = stable ? { version: stable.version, sha256: stable.sha256, claimed: stableClaims, measured: null } : null;
      const judged = judgeClaims(policy, result, stable ? { ...stable, claims: stableClaims } : null);
      if (!judged.ok) return await this.decide(msg, stored, { ...this.rejection(stored.record, judged.rejection), stable: stableRecord });
      const { verdict } = judged;
      const details = {
        policy: { code: verdict.code, limits: verdict.limits, objectives: verdict.objectives, missing: verdict.missing },
        ...(judged.ratios ? { claimed_ratios: judged.ratios, baseline: result.baseline } : {}),
      };
      if (!verdict.accepted) {
        return await this.decide(msg, stored, { ...this.rejection(stored.record, { stage: 'policy', code: verdict.code as Exclude<PolicyCode, 'beats_stable' | 'first_model_within_limits'>, reason: verdict.reason }), stable: stableRecord, details });
      }
      const reason =
        stable && !judged.comparedWith
          ? `Accepted for verification: every hard limit holds, and the stable ${stable.version} has no recorded figures, so the comparison happens on the golden set.`
          : verdict.reason;
      const accepted: DecisionRecord = { ...stored.record, stage: 'rollout', reason_code: 'accepted', reason, stable: stableRecord, details };
      stored = { record: accepted, revision: await this.o.decisions.update(accepted, stored.revision) };
      return await this.runRollout(msg, stored, result, signal);
    } catch (err) {
      return await this.failed(msg, stored, err, signal);
    } finally {
      clearInterval(heartbeat);
    }
  }

  private async runRollout(msg: IntakeMessage, stored: StoredDecision, result: ExperimentResult, signal: AbortSignal): Promise<ResultOutcome> {
    this.o.log.info('handing the candidate to the rollout runner', { id: result.id, model: result.model, version: result.version });
    const outcome = await this.o.runner.run(toCandidate(result), { working: () => msg.working(), signal });
    if (signal.aborted) {
      // Shutting down: the runner kept its state; whoever gets the message next resumes.
      msg.nak();
      return 'retry';
    }
    // Claimed and measured side by side: a promotion carries no report, so look it up.
    const verification =
      (outcome.outcome !== 'promoted' ? outcome.verification : undefined) ??
      (await this.o.verificationOf(result.model, result.id).catch((err: unknown) => {
        this.o.log.warn('verification report not found for the decision record', { id: result.id, error: err });
        return null;
      }));
    return this.decide(msg, stored, this.outcomeRecord(stored.record, outcome, verification ?? undefined));
  }

  private outcomeRecord(record: DecisionRecord, outcome: RolloutOutcome, v: VerificationReport | undefined): DecisionRecord {
    const decided_at = this.o.now().toISOString();
    const measured = v && Object.keys(v.measured).length > 0 ? v.measured : record.measured;
    const stable: DecisionStable | null = record.stable ? { ...record.stable, measured: v?.stableMeasured ?? record.stable.measured } : null;
    // Claimed and measured ratios, their intervals and the bands, next to the figures.
    const details = v && (v.claims || v.ratios) ? { ...record.details, verification: { claims: v.claims ?? [], measured_ratios: v.ratios ?? {}, objectives: v.objectives ?? [] } } : record.details;
    if (outcome.outcome === 'promoted') {
      return { ...record, status: 'promoted', stage: 'rollout', reason_code: 'promoted', reason: outcome.reason, measured, stable, details, decided_at };
    }
    return {
      ...record,
      status: outcome.outcome,
      stage: v && !v.ok ? 'verification' : 'rollout',
      reason_code: outcome.reasonCode,
      reason: outcome.reason,
      measured,
      stable,
      details,
      decided_at,
    };
  }

  private rejection(record: DecisionRecord, r: IntakeRejection): DecisionRecord {
    return { ...record, status: 'rejected', stage: r.stage, reason_code: r.code, reason: r.reason, details: r.details ?? record.details, decided_at: this.o.now().toISOString() };
  }

  private record(result: ExperimentResult, signer: string, received: Received): DecisionRecord {
    return {
      key: result.id,
      experiment_id: result.id,
      model: result.model,
      version: result.version,
      sha256: result.artifact.sha256,
      status: 'in_progress',
      stage: 'idempotency',
      reason_code: 'accepted',
      reason: 'Received: schema and signature are valid; checking the artifact and the policy.',
      claimed: result.metrics,
      measured: null,
      stable: null,
      details: null,
      signer,
      ...received,
      decided_at: null,
      attempts: 1,
    };
  }

  /** Stores the final record (CAS), announces it, then acks. A lost CAS leaves the message alone. */
  private async decide(msg: IntakeMessage, stored: StoredDecision, record: DecisionRecord): Promise<ResultOutcome> {
    try {
      await this.o.decisions.update(record, stored.revision);
    } catch (err) {
      if (!(err instanceof DecisionConflictError)) throw err;
      this.o.log.warn('another intake moved this decision on; leaving the message to it', { key: record.key });
      return 'retry';
    }
    await this.announce(record);
    await msg.ackAck();
    return record.status as ResultOutcome;
  }

  /**
   * Malformed or unauthenticated results are counted and terminated — JetStream will not
   * deliver them again. Nothing is written to the decisions bucket and nothing is announced:
   * an unsigned message must neither reserve a real experiment id nor cost a write.
   */
  private rejectUnverified(msg: IntakeMessage, received: Received, rejection: IntakeRejection, result: ExperimentResult | null): ResultOutcome {
    const subjectModel = modelFromSubject(msg.subject);
    this.o.unverified.record({
      stream_seq: received.stream_seq,
      subject: msg.subject,
      model: subjectModel !== null && this.knownModels.has(subjectModel) ? subjectModel : UNKNOWN_MODEL_LABEL,
      reason_code: rejection.code,
      reason: rejection.reason,
      claimed_id: result?.id ?? null,
      signer: msg.headers?.get(EXPERIMENT_HEADERS.signer)?.slice(0, 100) || null,
      received_at: received.received_at,
    });
    // No reason text: nats-server 2.9 ignores a `+TERM <reason>` it does not parse, and the
    // message would come back after every ack wait.
    msg.term();
    return 'rejected';
  }

  private async announce(record: DecisionRecord): Promise<void> {
    this.o.log.info('decision', { key: record.key, model: record.model, version: record.version, status: record.status, stage: record.stage, reason_code: record.reason_code, reason: record.reason });
    await this.o.publishEvent(decisionEvent(record, this.o.now().toISOString())).catch((err: unknown) => this.o.log.warn('decision event not published', { key: record.key, error: err }));
    await this.o.onDecision?.(record);
    // The runner counts the outcomes of the rollouts it ran; the intake counts its own.
    if (record.status === 'rejected' && record.stage !== 'rollout' && record.stage !== 'verification') this.o.onOutcome?.(record.model, 'rejected');
  }

  private async failed(msg: IntakeMessage, stored: StoredDecision | undefined, err: unknown, signal: AbortSignal): Promise<ResultOutcome> {
    if (signal.aborted) {
      msg.nak();
      return 'retry';
    }
    const attempt = msg.info.deliveryCount;
    // The decisions bucket full or failing: a few quick retries, then record it and move on,
    // so that one unrecordable result never holds the model's queue.
    const storeFailure = err instanceof DecisionStoreError;
    const attempts = storeFailure ? Math.min(this.o.storeAttempts ?? 3, this.o.maxDeliver) : this.o.maxDeliver;
    this.o.log.error('intake failed on a result', { subject: msg.subject, seq: msg.seq, attempt, max_attempts: attempts, decisions_bucket: storeFailure, error: err });
    if (attempt < attempts) {
      msg.nak(storeFailure ? 1_000 * attempt : Math.min(60_000, 1_000 * 2 ** attempt));
      return 'retry';
    }
    // Last delivery: record the failure so the result does not stay "in progress" forever.
    const text = err instanceof Error ? err.message : String(err);
    let recorded = false;
    if (stored && !isTerminalDecision(stored.record)) {
      const record = this.rejection(stored.record, { stage: stored.record.stage, code: 'intake_error', reason: `Rejected: the intake failed on this result ${attempt} times (last error: ${text}).` });
      recorded = await this.o.decisions.update(record, stored.revision).then(
        async () => {
          await this.announce(record);
          return true;
        },
        (e: unknown) => {
          this.o.log.error('could not record the intake failure', { key: record.key, error: e });
          return false;
        },
      );
    }
    if (!recorded) {
      const model = modelFromSubject(msg.subject);
      this.o.unverified.recordFailure({ stream_seq: msg.seq, model: model ?? UNKNOWN_MODEL_LABEL, experiment_id: stored?.record.experiment_id ?? (msg.headers?.get(EXPERIMENT_HEADERS.msgId) || null), error: text.slice(0, 500), at: this.o.now().toISOString() });
      this.o.log.error('gave up on a result whose decision could not be recorded; moving on (re-publish it once the decisions bucket has room)', { subject: msg.subject, seq: msg.seq, error: text });
    }
    msg.term();
    return 'rejected';
  }

  /** The stable's claimed figures: its model.json in the object store, else in a local model root. */
  private async stableClaims(stable: ModelRef): Promise<Metrics | null> {
    const fromStore = await this.o.registry.readManifest(stable.model, stable.version).catch(() => null);
    if (fromStore && fromStore.sha256 === stable.sha256) return fromStore.metrics ?? null;
    for (const root of this.o.modelRoots) {
      const file = path.join(root, stable.model, stable.version, 'model.json');
      try {
        const manifest = parseModelManifest(JSON.parse(await readFile(file, 'utf8')), file);
        if (manifest.sha256 === stable.sha256) return manifest.metrics ?? null;
      } catch {
        // not there; try the next root
      }
    }
    return null;
  }
}
