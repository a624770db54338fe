// The rollout record (the value under key <model> in KV `segserve_rollouts`) and the pure
// questions the controller asks about it besides `decide`: what each track should run, what
// to observe, how wide the metrics window is, whether a rollout can start or be rolled back.
import type { ExperimentBaseline, ReasonCode, RolloutPhase, RolloutState, Track, TrackState } from '@segserve/proto';
import type { Analysis, BucketPairs, Check, Verdict } from './canary-analysis.js';
import type { CanaryPolicy } from './policy.js';
import type { Candidate, Metrics, ModelRef, Readiness, RolloutOutcome, VerificationReport } from './ports.js';

/** What the promoter keeps about the candidate, enough to resume any phase after a restart. */
export interface CandidateRecord {
  readonly id: string;
  readonly version: string;
  readonly sha256: string;
  readonly claimed: Metrics;
  readonly golden_sha256: string;
  /** The stable measured with the claims (a result of the second form). */
  readonly baseline?: ExperimentBaseline;
}

export type OutcomeKind = RolloutOutcome['outcome'];

/** The value under key <model> in `segserve_rollouts`; gateways read only the RolloutState part. */
export interface RolloutRecord extends RolloutState {
  readonly experiment_id?: string;
  readonly candidate?: CandidateRecord;
  /** The stable before the promotion: what a rollback during the bake or after success restores. */
  readonly previous_stable?: TrackState | null;
  /** A rollback that still has to bring this version back before the state can route to it. */
  readonly restore?: TrackState | null;
  readonly rollback_requested?: { readonly reason: string; readonly at: string } | null;
  readonly phase_started_at?: string;
  readonly next_check_at?: string;
  /** Start of the metrics window of the next check: the last decisive check (or step start). */
  readonly window_start?: string;
  readonly bake_until?: string;
  readonly failed_checks?: number;
  readonly last_checks?: readonly Check[];
  readonly last_verdict?: Verdict;
  readonly last_check_at?: string;
  /** The p95 of `baseline_latency_buckets` (the last passing window's p95 when there are no histograms). */
  readonly baseline_p95_seconds?: number | null;
  /** The previous stable's latency histogram over every passing canary window, added up (the bake's baseline). */
  readonly baseline_latency_buckets?: BucketPairs | null;
  /**
   * Tracks the golden set is replayed through in every window from now on in this rollout: set
   * once a check held for samples (live traffic below `min_requests`), so that each later canary
   * step and the bake start with the replay instead of losing a first, empty window to it.
   */
  readonly replay_tracks?: readonly Track[];
  /** Checks in a row that held at this canary step (or in this bake). */
  readonly holds?: number;
  /** Passing checks during the bake: Succeeded needs at least one. */
  readonly bake_passes?: number;
  /** Times the bake was extended for lack of a passing check. */
  readonly bake_extensions?: number;
  readonly outcome?: OutcomeKind;
  readonly reason_code?: ReasonCode;
  readonly verification?: VerificationReport;
}

export interface RolloutSettings {
  readonly canary: CanaryPolicy;
  /** A track that is still not ready after this long fails the rollout. */
  readonly readyTimeoutMs: number;
  /** How often to look again while waiting for readiness. */
  readonly pollMs: number;
}

export interface Observation {
  readonly canary?: Readiness;
  readonly stable?: Readiness;
  /** Present once the candidate was verified (only asked for when the canary is ready). */
  readonly verification?: VerificationReport;
  /** Present when a check was due (`observationsNeeded(...).analysis`). */
  readonly analysis?: Analysis;
}

export type RolloutEventType = 'phase' | 'check' | 'target' | 'bake_extended' | 'rollback_requested' | 'rollback_refused' | 'restored';

/** One message on ROLLOUT_EVENTS `segserve.rollouts.<model>`. */
export interface RolloutEvent {
  readonly type: RolloutEventType;
  readonly model: string;
  readonly experiment_id: string | null;
  readonly version: string | null;
  readonly phase: RolloutPhase;
  readonly step: number | null;
  readonly weight: number;
  readonly at: string;
  readonly reason?: string;
  readonly reason_code?: ReasonCode;
  readonly verdict?: Verdict;
  readonly checks?: readonly Check[];
  readonly failed_checks?: number;
}

export interface Decision {
  readonly state: RolloutRecord;
  /** False when `state` is the input unchanged (nothing to write). */
  readonly changed: boolean;
  readonly events: readonly RolloutEvent[];
  /** Tracks to replay the golden set through (a check held for lack of samples). */
  readonly replay: readonly ('canary' | 'stable')[];
  /** When to decide again; null when the rollout is settled. */
  readonly wakeAt: Date | null;
}

export interface DesiredTracks {
  readonly stable: ModelRef | null;
  /** `keep`: leave the canary as it is (promotion hands its processes to the stable track). */
  readonly canary: ModelRef | 'keep' | null;
}

export interface Needs {
  readonly canary: boolean;
  readonly stable: boolean;
  /** Verify the candidate when (and only when) the canary is ready. */
  readonly verifyWhenReady: boolean;
  readonly analysis: 'canary' | 'bake' | null;
}

const ACTIVE: ReadonlySet<RolloutPhase> = new Set(['Verifying', 'Canary', 'Promoting', 'Baking']);

export function candidateRef(s: RolloutRecord): ModelRef | null {
  return s.candidate ? { model: s.model, version: s.candidate.version, sha256: s.candidate.sha256 } : null;
}

const trackRef = (model: string, t: TrackState | null | undefined): ModelRef | null => (t ? { model, version: t.version, sha256: t.sha256 } : null);

/** Nothing left to do: no phase in progress, no restore pending, no rollback request. */
export function isSettled(s: RolloutRecord): boolean {
  return !ACTIVE.has(s.phase) && !s.restore && !s.rollback_requested;
}

/** The outcome of a settled rollout (for RolloutRunner.run); undefined while it runs. */
export function outcomeOf(s: RolloutRecord): RolloutOutcome | undefined {
  if (!isSettled(s) || !s.outcome) return undefined;
  if (s.outcome === 'promoted') return { outcome: 'promoted', reason: s.reason ?? `${s.model} ${s.stable?.version ?? '?'} promoted` };
  return { outcome: s.outcome, reasonCode: s.reason_code ?? 'inconsistent_state', reason: s.reason ?? 'failed', ...(s.verification ? { verification: s.verification } : {}) };
}

/**
 * Starts a rollout of `candidate`: a new record in Verifying, the same record when this
 * candidate's rollout already exists (resume), or undefined while another one is in progress.
 */
export function startRollout(current: RolloutRecord | null, candidate: Candidate, now: Date): RolloutRecord | undefined {
  if (current && current.experiment_id === candidate.id) return current;
  if (current && !isSettled(current)) return undefined;
  const at = now.toISOString();
  return {
    model: candidate.ref.model,
    stable: current?.stable ?? null,
    canary: null,
    phase: 'Verifying',
    updated_at: at,
    revision: current?.revision ?? 0,
    experiment_id: candidate.id,
    candidate: { id: candidate.id, version: candidate.ref.version, sha256: candidate.ref.sha256, claimed: candidate.claimed, golden_sha256: candidate.goldenSha256, ...(candidate.baseline ? { baseline: candidate.baseline } : {}) },
    previous_stable: current?.previous_stable ?? null,
    restore: null,
    rollback_requested: null,
    phase_started_at: at,
    failed_checks: 0,
  };
}

/** The first record of a model: `stable` serving, nothing in progress (local stack bootstrap). */
export function initialRecord(model: string, stable: TrackState, now: Date): RolloutRecord {
  return { model, stable, canary: null, phase: 'Idle', updated_at: now.toISOString(), revision: 0, previous_stable: null };
}

/** Whether a manual rollback can do anything now; the reason says why not. */
export function rollbackRefusal(s: RolloutRecord | null): string | undefined {
  if (!s) return 'no rollout state for this model';
  if (s.rollback_requested) return undefined;
  switch (s.phase) {
    case 'Verifying':
    case 'Canary':
    case 'Promoting':
      return undefined;
    case 'Baking':
    case 'Succeeded':
      return s.previous_stable ? undefined : 'there is no previous stable to restore (first version of the model)';
    case 'Failed':
      return s.restore ? undefined : 'already rolled back';
    case 'Idle':
      return 'nothing to roll back: no rollout has run';
  }
}

/** Which version each track should run in this state. */
export function desiredTracks(s: RolloutRecord): DesiredTracks {
  const stable = trackRef(s.model, s.stable);
  switch (s.phase) {
    case 'Verifying':
    case 'Canary':
      return { stable, canary: candidateRef(s) };
    case 'Promoting':
      return { stable: candidateRef(s), canary: 'keep' };
    case 'Failed':
      return { stable: trackRef(s.model, s.restore) ?? stable, canary: null };
    default:
      return { stable, canary: null };
  }
}

export function observationsNeeded(s: RolloutRecord, now: Date): Needs {
  const due = s.next_check_at !== undefined && now.getTime() >= Date.parse(s.next_check_at);
  // The stable's readiness is looked at in every phase: it carries the target to route to,
  // which changes when a restarted promoter had to start the stable again.
  const stable = desiredTracks(s).stable !== null;
  switch (s.phase) {
    case 'Verifying':
      return { canary: true, stable, verifyWhenReady: true, analysis: null };
    case 'Canary':
      return { canary: true, stable, verifyWhenReady: false, analysis: due ? 'canary' : null };
    case 'Baking': {
      // The bake's end is a check of its own: its verdict counts before the bake is extended.
      const over = s.bake_until !== undefined && now.getTime() >= Date.parse(s.bake_until);
      return { canary: false, stable, verifyWhenReady: false, analysis: due || over ? 'bake' : null };
    }
    default:
      return { canary: false, stable, verifyWhenReady: false, analysis: null };
  }
}

/** A check looks at no more than this many intervals of metrics. */
export const MAX_WINDOW_INTERVALS = 10;

/**
 * Seconds of metrics the next check looks at, canary and stable alike: everything since the
 * last decisive check. A held check keeps collecting, so a thin (or slow) canary reaches
 * `min_requests` over a longer window instead of holding forever; at least one interval, at
 * most MAX_WINDOW_INTERVALS.
 */
export function analysisWindowSeconds(settings: RolloutSettings, s: RolloutRecord, now: Date): number {
  const interval = settings.canary.intervalMs;
  const start = s.window_start ? Date.parse(s.window_start) : now.getTime() - interval;
  const ms = Math.min(Math.max(now.getTime() - start, interval), interval * MAX_WINDOW_INTERVALS);
  return Math.max(1, Math.round(ms / 1000));
}
