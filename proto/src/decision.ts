// Decision records (docs/architecture.md#nats): KV `segserve_decisions`, key = experiment id → the record.
// The intake creates a record when it starts on a result (idempotency: a create fails when the
// id was seen) and completes it with compare-and-set on the KV revision. Only signed results
// are stored: results rejected before their signature is verified are counted by the intake,
// so that an unauthenticated message can neither reserve a real experiment id nor fill the bucket.
import type { ReasonCode } from './reason-codes.js';

export type DecisionStatus = 'in_progress' | 'promoted' | 'rejected' | 'rolled_back';

export const TERMINAL_DECISION_STATUSES: readonly DecisionStatus[] = ['promoted', 'rejected', 'rolled_back'];

/** Where in the pipeline the decision was taken (the pipeline order of docs/architecture.md#promotion). */
export type DecisionStage = 'schema' | 'signature' | 'idempotency' | 'artifact' | 'policy' | 'verification' | 'rollout';

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
  /** Why, for a program (proto/src/reason-codes.ts: each code with its sentence). */
  readonly reason_code: ReasonCode;
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
  readonly reason_code: ReasonCode;
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
