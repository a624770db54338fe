// The first, pure steps of intake for one message (docs/architecture.md#promotion): decode and validate the
// ExperimentResult, check it against the subject it came on and its Nats-Msg-Id, turn an
// accepted result into a Candidate, and judge its claims against the stable's (the policy step).
// Signature, idempotency and artifact checks need I/O and live in src/intake/.
import { createHash } from 'node:crypto';
import {
  SegserveError,
  canonicalJson,
  decodeExperimentResult,
  isValidModelName,
  type DecisionStage,
  type ExperimentResult,
  type ReasonCode,
} from '@segserve/proto';
import { evaluatePolicy, type Policy, type PolicyVerdict } from './policy.js';
import type { Candidate, Metrics, ModelRef } from './ports.js';
import { DEFAULT_CONFIDENCE, pointRatio, type RatioInterval } from './ratio.js';

export interface IntakeRejection {
  readonly stage: DecisionStage;
  readonly code: ReasonCode;
  /** One sentence a person can read. */
  readonly reason: string;
  readonly details?: Readonly<Record<string, unknown>>;
}

export type Checked<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly rejection: IntakeRejection };

export const EXPERIMENTS_SUBJECT_PREFIX = 'segserve.experiments.';

/** `segserve.experiments.facade-ads` → `facade-ads`; null for anything else. */
export function modelFromSubject(subject: string): string | null {
  if (!subject.startsWith(EXPERIMENTS_SUBJECT_PREFIX)) return null;
  const model = subject.slice(EXPERIMENTS_SUBJECT_PREFIX.length);
  return isValidModelName(model) ? model : null;
}

function reject(stage: DecisionStage, code: ReasonCode, reason: string, details?: Record<string, unknown>): Checked<never> {
  return { ok: false, rejection: { stage, code, reason, ...(details ? { details } : {}) } };
}

export interface ResultMessage {
  readonly subject: string;
  /** The `Nats-Msg-Id` header, if any. */
  readonly msgId: string | undefined;
  readonly body: Uint8Array;
}

/**
 * Decodes and validates a result message: JSON, schema (unknown fields, non-finite numbers,
 * bad names), the model has a policy, the body's model is the subject's, and the id is the
 * Nats-Msg-Id (de-duplication keys on the header, idempotency on the id: they must agree).
 */
export function readResultMessage(message: ResultMessage, knownModels: ReadonlySet<string>): Checked<ExperimentResult> {
  const subjectModel = modelFromSubject(message.subject);
  if (subjectModel === null) {
    return reject('schema', 'subject_mismatch', `Rejected: '${message.subject}' is not segserve.experiments.<model> with a valid model name.`);
  }
  if (!knownModels.has(subjectModel)) {
    return reject('schema', 'unknown_model', `Rejected: model '${subjectModel}' has no promotion policy, so no result for it can be decided.`);
  }
  let result: ExperimentResult;
  try {
    result = decodeExperimentResult(message.body, 'result');
  } catch (err) {
    const text = err instanceof SegserveError ? err.message : String(err);
    const code: ReasonCode = text.includes('not UTF-8 JSON') ? 'invalid_json' : 'schema_invalid';
    return reject('schema', code, `Rejected: the result is malformed (${text}).`);
  }
  if (result.model !== subjectModel) {
    return reject('schema', 'subject_mismatch', `Rejected: the result is for model '${result.model}' but was published on '${message.subject}'.`, {
      subject_model: subjectModel,
      result_model: result.model,
    });
  }
  if (message.msgId !== result.id) {
    return reject('schema', 'id_mismatch', `Rejected: the Nats-Msg-Id header '${message.msgId ?? ''}' is not the result's id '${result.id}'.`, {
      msg_id: message.msgId ?? null,
      id: result.id,
    });
  }
  return { ok: true, value: result };
}

export function toCandidate(result: ExperimentResult): Candidate {
  return {
    id: result.id,
    ref: { model: result.model, version: result.version, sha256: result.artifact.sha256 },
    claimed: { ...result.metrics },
    goldenSha256: result.golden.sha256,
    ...(result.baseline ? { baseline: result.baseline } : {}),
  };
}

/**
 * The claimed candidate/stable ratios of a result with a baseline (schema_version 2): for every
 * metric both sides carry, metrics[m] / baseline.metrics[m], with the claimed interval when the
 * result gives one. Empty for a result of the first form.
 */
export function claimedRatios(result: Pick<ExperimentResult, 'metrics' | 'baseline'>): Record<string, RatioInterval> {
  const out: Record<string, RatioInterval> = {};
  const b = result.baseline;
  if (!b) return out;
  for (const [metric, value] of Object.entries(result.metrics)) {
    const base = b.metrics[metric];
    if (base === undefined) continue;
    const r = pointRatio(value, base);
    if (!r) continue;
    const iv = b.intervals?.[metric];
    out[metric] = iv ? { ratio: r.ratio, low: Math.min(r.ratio, iv[0]), high: Math.max(r.ratio, iv[1]), confidence: DEFAULT_CONFIDENCE, samples: b.pairs ?? 0 } : r;
  }
  return out;
}

/** The stable as the intake knows it: its ref and the figures recorded in its model.json. */
export interface StableClaims extends ModelRef {
  readonly claims: Metrics | null;
}

export type ClaimsJudgement =
  | { readonly ok: false; readonly rejection: IntakeRejection }
  | {
      readonly ok: true;
      readonly verdict: PolicyVerdict;
      /** What the claims were compared with: the stable's figures (and, for machine-bound metrics of the second form, its baseline). */
      readonly comparedWith: Metrics | null;
      /** Claimed ratios (second form), null for the first. */
      readonly ratios: Readonly<Record<string, RatioInterval>> | null;
    };

const short = (sha: string): string => sha.slice(0, 12);

/**
 * The policy on the claims, before anything runs. First form: the claimed figures against the
 * stable's recorded ones. Second form: machine-bound metrics as the claimed ratios to the
 * baseline — which must be the current stable — and no absolute limit on them (they were
 * measured on another machine; the verifier applies the limits to its own measurement); the
 * other metrics as in the first form.
 */
export function judgeClaims(policy: Policy, result: ExperimentResult, stable: StableClaims | null): ClaimsJudgement {
  const b = result.baseline;
  if (!b) return { ok: true, verdict: evaluatePolicy(policy, result.metrics, stable?.claims ?? null), comparedWith: stable?.claims ?? null, ratios: null };
  if (stable && b.sha256 !== stable.sha256) {
    const reason = `Rejected: the claims are ratios to ${b.version} (model.onnx ${short(b.sha256)}), but the stable is ${stable.version} (${short(stable.sha256)}); measure against the stable with segserve eval --against.`;
    const details = { baseline: { version: b.version, sha256: b.sha256 }, stable: { version: stable.version, sha256: stable.sha256 } };
    return { ok: false, rejection: { stage: 'policy', code: 'baseline_not_stable', reason, details } };
  }
  const ratios = claimedRatios(result);
  if (!stable) return { ok: true, verdict: evaluatePolicy(policy, result.metrics, null, { measuredElsewhere: true }), comparedWith: null, ratios };
  // The stable's recorded figures where they exist; its baseline figures from the same run for the rest.
  const recorded = Object.fromEntries(Object.entries(stable.claims ?? {}).filter(([m]) => !policy.objectives.some((o) => o.metric === m && o.machineBound)));
  const comparedWith = { ...b.metrics, ...recorded };
  return { ok: true, verdict: evaluatePolicy(policy, result.metrics, comparedWith, { ratios, measuredElsewhere: true }), comparedWith, ratios };
}

/**
 * The default experiment id: model, version and a digest of everything but `id` and
 * `created_at`, so that publishing the same result twice yields the same id (one decision),
 * while a different claim, baseline, artifact or CI job yields a new one (a result without a
 * baseline keeps the id it always had).
 */
export function defaultExperimentId(result: Omit<ExperimentResult, 'id' | 'created_at'>): string {
  const digest = createHash('sha256')
    .update(canonicalJson({ model: result.model, version: result.version, artifact: result.artifact, metrics: result.metrics, baseline: result.baseline, golden: result.golden, source: result.source }))
    .digest('hex');
  const version = result.version.replace(/[^A-Za-z0-9_-]/g, '_');
  return `${result.model}-${version}-${digest.slice(0, 12)}`.slice(0, 128);
}
