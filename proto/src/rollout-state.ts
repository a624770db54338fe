// RolloutState (docs/architecture.md#nats): key <model> in KV `segserve_rollouts`, written only by the
// promoter with compare-and-set on the revision; gateways route from it and nothing else.

export type Track = 'stable' | 'canary';

export type RolloutPhase = 'Idle' | 'Verifying' | 'Canary' | 'Promoting' | 'Baking' | 'Succeeded' | 'Failed';

export const ROLLOUT_PHASES: readonly RolloutPhase[] = ['Idle', 'Verifying', 'Canary', 'Promoting', 'Baking', 'Succeeded', 'Failed'];

export interface TrackState {
  readonly version: string;
  readonly sha256: string;
  /** gRPC target for this track: `dns:///…:50051` or `ipv4:127.0.0.1:<port>[,…]`. */
  readonly target: string;
}

export interface CanaryTrackState extends TrackState {
  /** Percentage of requests (0–100) routed to the canary. */
  readonly weight: number;
}

export interface RolloutState {
  readonly model: string;
  readonly stable: TrackState | null;
  readonly canary: CanaryTrackState | null;
  readonly phase: RolloutPhase;
  /** Canary step index while phase is Canary. */
  readonly step?: number;
  readonly reason?: string;
  readonly updated_at: string;
  /** Monotonic counter the promoter bumps on every write (the KV revision is the CAS guard). */
  readonly revision: number;
  /** Free-form fields the promoter keeps for itself (experiment id, previous stable, checks). */
  readonly [extra: string]: unknown;
}

export const NATS_NAMES = {
  experimentsStream: 'EXPERIMENTS',
  experimentsSubject: (model: string) => `segserve.experiments.${model}`,
  modelsObjectStore: 'segserve_models',
  rolloutsKv: 'segserve_rollouts',
  decisionsKv: 'segserve_decisions',
  rolloutEventsStream: 'ROLLOUT_EVENTS',
  rolloutEventsSubject: (model: string) => `segserve.rollouts.${model}`,
} as const;
