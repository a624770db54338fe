// The first, pure steps of intake for one message (DESIGN.md §7): decode and validate the
// ExperimentResult, check it against the subject it came on and its Nats-Msg-Id, and turn an
// accepted result into a Candidate. Signature, idempotency and artifact checks need I/O and
// live in src/intake/.
import { createHash } from 'node:crypto';
import {
  SegserveError,
  canonicalJson,
  decodeExperimentResult,
  isValidModelName,
  type DecisionStage,
  type ExperimentResult,
  type KnownReasonCode,
} from '@segserve/proto';
import type { Candidate } from './ports.js';

export interface IntakeRejection {
  readonly stage: DecisionStage;
  readonly code: KnownReasonCode;
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

function reject(stage: DecisionStage, code: KnownReasonCode, reason: string, details?: Record<string, unknown>): Checked<never> {
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
    const code: KnownReasonCode = text.includes('not UTF-8 JSON') ? 'invalid_json' : 'schema_invalid';
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
  };
}

/**
 * The default experiment id: model, version and a digest of everything but `id` and
 * `created_at`, so that publishing the same result twice yields the same id (one decision),
 * while a different claim, artifact or CI job yields a new one.
 */
export function defaultExperimentId(result: Omit<ExperimentResult, 'id' | 'created_at'>): string {
  const digest = createHash('sha256')
    .update(canonicalJson({ model: result.model, version: result.version, artifact: result.artifact, metrics: result.metrics, golden: result.golden, source: result.source }))
    .digest('hex');
  const version = result.version.replace(/[^A-Za-z0-9_-]/g, '_');
  return `${result.model}-${version}-${digest.slice(0, 12)}`.slice(0, 128);
}
