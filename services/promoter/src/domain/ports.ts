// The promoter's ports (docs/architecture.md#rollout-drivers; small interfaces at the boundaries).
// Implementations live in src/adapters/, one file each; only main.ts constructs them.
import type { ExperimentBaseline, ReasonCode, Track } from '@segserve/proto';
import type { ClaimFigure, ObjectiveFigure } from './policy.js';
import type { Buckets, RatioInterval } from './ratio.js';
export type { LogFields, Logger } from '@segserve/runtime';

export interface ModelRef {
  readonly model: string;
  readonly version: string;
  readonly sha256: string;
}

export type Readiness =
  | { readonly state: 'ready'; readonly target: string }
  | { readonly state: 'progressing'; readonly detail: string }
  | { readonly state: 'failed'; readonly reason: string };

/**
 * Runs model versions as inference servers: local processes on loopback, or Kubernetes
 * Deployments `inference-<model>-stable|canary`. Route weights are not here: they live in the
 * rollout state (KV), which gateways follow.
 */
export interface ModelDeployer {
  /** Starts (or re-points) the canary track at `ref`, with no traffic yet. Idempotent. */
  deployCanary(ref: ModelRef): Promise<void>;
  /** Current readiness of a track; `failed` for crash loops and progress deadlines. */
  readiness(model: string, track: Track): Promise<Readiness>;
  /** Points the stable track at `ref` (promotion, or rollback to the previous stable). */
  deployStable(ref: ModelRef): Promise<void>;
  /** Removes the canary track (scale to zero / stop the processes). Idempotent. */
  removeCanary(model: string): Promise<void>;
  /** Releases everything this deployer started (local driver); a no-op for Kubernetes. */
  close(): Promise<void>;
  /**
   * Stops what the deployer retired (an old stable, a removed canary) once no route in
   * `inUseTargets` points at it any more. The controller calls it after every rollout-state
   * write, so gateways have switched before processes go away. Absent = nothing to prune.
   */
  prune?(model: string, inUseTargets: readonly string[]): Promise<void>;
  /** `host:port` of each /metrics endpoint of a track (local driver; scraping and Prometheus SD). */
  metricsTargets?(model: string, track: Track): readonly string[];
}

/** One window of canary-versus-stable figures, read from Prometheus or scraped directly. */
export interface TrackMetrics {
  readonly requests: number;
  readonly errors: number;
  readonly latencyP95Seconds: number | null;
  /** The window's latency histogram (cumulative counts by `le`): the p95's uncertainty comes from it. */
  readonly latencyBuckets?: Buckets | null;
  readonly rssBytes: number | null;
  readonly memoryLimitBytes: number | null;
}

export interface MetricsSource {
  readonly name: string;
  /** Figures for one track of a model over the last `windowSeconds`. */
  trackMetrics(model: string, version: string, track: Track, windowSeconds: number): Promise<TrackMetrics>;
  isOnline(): Promise<boolean>;
}

/**
 * Sends golden-set images to a track so that canary analysis has samples when live traffic is
 * too thin (a held check never passes and never fails, docs/architecture.md#promotion).
 */
export interface GoldenReplayer {
  /** Sends `requests` golden images to `target`, evenly spread over `spreadMs` (0: at once). */
  replay(model: string, target: string, requests: number, signal: AbortSignal, options?: { readonly spreadMs?: number }): Promise<{ readonly sent: number; readonly failed: number }>;
  /**
   * Sends `pairs` golden images through both tracks, each image to one and then the other (the
   * order alternating), pairs evenly spread over `spreadMs`; `onPair` gets the two latencies (ms)
   * of every pair both answered. `sent` and `failed` count requests.
   */
  replayPaired?(model: string, targets: { readonly canary: string; readonly stable: string }, pairs: number, signal: AbortSignal, options: { readonly spreadMs?: number; readonly onPair: (canaryMs: number, stableMs: number) => void }): Promise<{ readonly sent: number; readonly failed: number }>;
}

/** Metric figures of a model version: miou, latency_ms_p95, peak_rss_mb, … */
export type Metrics = Readonly<Record<string, number>>;

/** An experiment result that passed intake (schema, signature, idempotency, artifact, policy on claims). */
export interface Candidate {
  /** Experiment id (the `Nats-Msg-Id`, and the key in `segserve_decisions`). */
  readonly id: string;
  readonly ref: ModelRef;
  readonly claimed: Metrics;
  /** Digest of the golden set the claims were measured on. */
  readonly goldenSha256: string;
  /** The stable measured in the same run (a result of the second form): cost claims are ratios to it. */
  readonly baseline?: ExperimentBaseline;
}

/** Claimed and measured side by side, and whether the candidate still beats the stable. */
export interface VerificationReport {
  readonly ok: boolean;
  /** Machine-readable reason, e.g. `verified`, `claim_not_reproduced`, `worse_than_stable` (proto/src/reason-codes.ts). */
  readonly reasonCode: ReasonCode;
  /** One sentence a person can read. */
  readonly reason: string;
  readonly claimed: Metrics;
  readonly measured: Metrics;
  readonly stableMeasured: Metrics | null;
  /** The candidate/stable ratios measured paired, with their intervals (machine-bound metrics). */
  readonly ratios?: Readonly<Record<string, RatioInterval>>;
  /** Each claim checked: claimed, measured, and for a ratio its interval and the band that reproduces it. */
  readonly claims?: readonly ClaimFigure[];
  /** The measured candidate against the measured stable, objective by objective. */
  readonly objectives?: readonly ObjectiveFigure[];
}

/** Runs the golden set through a candidate served at `target` (no live traffic) and judges it. */
export interface CandidateVerifier {
  verify(candidate: Candidate, target: string, signal: AbortSignal): Promise<VerificationReport>;
}

export type RolloutOutcome =
  | { readonly outcome: 'promoted'; readonly reason: string }
  | { readonly outcome: 'rejected' | 'rolled_back'; readonly reasonCode: ReasonCode; readonly reason: string; readonly verification?: VerificationReport };

/**
 * Takes an accepted candidate through Verifying → Canary → Promoting → Baking → Succeeded, or
 * Failed. Resumes (never restarts) a rollout already recorded for the same experiment id.
 * `working()` is called periodically so the intake can extend the message's ack deadline.
 */
export interface RolloutRunner {
  run(candidate: Candidate, hooks: { readonly working: () => void; readonly signal: AbortSignal }): Promise<RolloutOutcome>;
}
