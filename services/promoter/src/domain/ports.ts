// The promoter's ports (DESIGN.md §11, STYLE.md "small interfaces at the boundaries").
// Implementations live in src/adapters/, one file each; only main.ts constructs them.
import type { Track } from '@segserve/proto';

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
}

/** One window of canary-versus-stable figures, read from Prometheus or scraped directly. */
export interface TrackMetrics {
  readonly requests: number;
  readonly errors: number;
  readonly latencyP95Seconds: number | null;
  readonly rssBytes: number | null;
  readonly memoryLimitBytes: number | null;
}

export interface MetricsSource {
  readonly name: string;
  /** Figures for one track of a model over the last `windowSeconds`. */
  trackMetrics(model: string, version: string, track: Track, windowSeconds: number): Promise<TrackMetrics>;
  isOnline(): Promise<boolean>;
}
