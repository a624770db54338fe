// Decision records (docs/architecture.md#nats): KV `segserve_decisions`, key = experiment id → the record.
// The intake creates a record when it starts on a result (idempotency: a create fails when the
// id was seen) and completes it with compare-and-set on the KV revision. Only signed results
// are stored: results rejected before their signature is verified are counted by the intake,
// so that an unauthenticated message can neither reserve a real experiment id nor fill the bucket.

export type DecisionStatus = 'in_progress' | 'promoted' | 'rejected' | 'rolled_back';

export const TERMINAL_DECISION_STATUSES: readonly DecisionStatus[] = ['promoted', 'rejected', 'rolled_back'];

/** Where in the pipeline the decision was taken (the pipeline order of docs/architecture.md#promotion). */
export type DecisionStage = 'schema' | 'signature' | 'idempotency' | 'artifact' | 'policy' | 'verification' | 'rollout';

/**
 * Machine-readable reason codes. Policy codes (`metric_missing`, `limit_exceeded`,
 * `worse_than_stable`, `no_improvement`) appear both at stage `policy` (claimed figures) and at
 * stage `verification` (measured figures); rollout codes come from the rollout runner.
 */
export const DECISION_REASON_CODES = [
  // schema
  'invalid_json',
  'schema_invalid',
  'subject_mismatch',
  'id_mismatch',
  'unknown_model',
  // signature
  'signature_missing',
  'signer_unknown',
  'signature_invalid',
  // artifact
  'artifact_missing',
  'artifact_size_mismatch',
  'artifact_digest_mismatch',
  'manifest_missing',
  'manifest_invalid',
  'manifest_mismatch',
  // policy (claimed figures) and verification (measured figures)
  'metric_missing',
  'limit_exceeded',
  'worse_than_stable',
  'no_improvement',
  'same_as_stable',
  // a result of the second form whose baseline is not the current stable
  'baseline_not_stable',
  // verification
  'golden_missing',
  'golden_mismatch',
  'claim_not_reproduced',
  'measurement_missing',
  'verification_failed',
  // the intake itself failed on this result every time it was delivered
  'intake_error',
  // rollout: no decisive check (a canary step or the bake only ever held)
  'no_evidence',
  // in progress / outcome
  'accepted',
  'promoted',
] as const;

export type KnownReasonCode = (typeof DECISION_REASON_CODES)[number];

export interface DecisionStable {
  readonly version: string;
  readonly sha256: string;
  /** The stable's claimed figures (its model.json metrics), compared at stage `policy`. */
  readonly claimed: Readonly<Record<string, number>> | null;
  /** The stable measured on the golden set the same way as the candidate (verification). */
  readonly measured: Readonly<Record<string, number>> | null;
}

export interface DecisionRecord {
  /** The KV key: the experiment id. */
  readonly key: string;
  /** The experiment id as claimed by the message (null when unreadable). */
  readonly experiment_id: string | null;
  readonly model: string;
  readonly version: string | null;
  readonly sha256: string | null;
  readonly status: DecisionStatus;
  readonly stage: DecisionStage;
  /** A DECISION_REASON_CODES entry, or a rollout runner's code (e.g. `canary_failed`). */
  readonly reason_code: string;
  /** One sentence a person can read. */
  readonly reason: string;
  readonly claimed: Readonly<Record<string, number>> | null;
  readonly measured: Readonly<Record<string, number>> | null;
  readonly stable: DecisionStable | null;
  /** The figures behind the reason (policy verdict, claim checks, digests …). */
  readonly details: Readonly<Record<string, unknown>> | null;
  readonly signer: string | null;
  readonly subject: string;
  readonly stream_seq: number;
  readonly received_at: string;
  readonly decided_at: string | null;
  /** How many times the intake has started on this result (redeliveries after a crash). */
  readonly attempts: number;
}

/** Published on ROLLOUT_EVENTS `segserve.rollouts.<model>` for every intake decision. */
export interface DecisionEvent {
  readonly type: 'decision';
  readonly model: string;
  readonly key: string;
  readonly experiment_id: string | null;
  readonly version: string | null;
  readonly status: DecisionStatus;
  readonly stage: DecisionStage;
  readonly reason_code: string;
  readonly reason: string;
  readonly claimed: Readonly<Record<string, number>> | null;
  readonly measured: Readonly<Record<string, number>> | null;
  readonly at: string;
}

export function isTerminalDecision(record: Pick<DecisionRecord, 'status'>): boolean {
  return TERMINAL_DECISION_STATUSES.includes(record.status);
}

export function decisionEvent(record: DecisionRecord, at: string): DecisionEvent {
  return {
    type: 'decision',
    model: record.model,
    key: record.key,
    experiment_id: record.experiment_id,
    version: record.version,
    status: record.status,
    stage: record.stage,
    reason_code: record.reason_code,
    reason: record.reason,
    claimed: record.claimed,
    measured: record.measured,
    at,
  };
}
