// Per-request routing between the stable and canary tracks of a model (docs/architecture.md#nats, #rollout-drivers).
// Pure: the random draw is passed in, so table tests can pin every branch and a statistical
// test can check the split.
import type { RolloutState, Track, TrackState } from '@segserve/proto';

export interface RouteWeights {
  readonly stable: number;
  readonly canary: number;
}

/** The canary's share as a fraction in [0, 1]; anything not a finite number counts as 0. */
function canaryFraction(state: RolloutState): number {
  const weight = state.canary?.weight;
  if (typeof weight !== 'number' || !Number.isFinite(weight)) return 0;
  return Math.min(Math.max(weight, 0), 100) / 100;
}

/** Percentages of traffic each track gets under `state` (what the route_weight gauge shows). */
export function routeWeights(state: RolloutState): RouteWeights {
  if (!state.stable && !state.canary) return { stable: 0, canary: 0 };
  if (!state.stable) return { stable: 0, canary: 100 };
  if (!state.canary) return { stable: 100, canary: 0 };
  const canary = canaryFraction(state) * 100;
  return { stable: 100 - canary, canary };
}

/**
 * Chooses a track for one request. `random` is a uniform draw in [0, 1). A canary with weight w
 * gets the request when random < w/100; with no stable track, the canary gets everything.
 * Returns undefined when the model has no track at all.
 */
export function chooseTrack(state: RolloutState, random: number): Track | undefined {
  if (!state.stable) return state.canary ? 'canary' : undefined;
  if (!state.canary) return 'stable';
  return random < canaryFraction(state) ? 'canary' : 'stable';
}

/**
 * The track that serves an explicitly requested version, if the state names it. A request for
 * a version the state does not know is not routed by weight: the caller asked for something
 * specific, so it is either that version or NOT_FOUND.
 */
export function trackForVersion(state: RolloutState, version: string): Track | undefined {
  if (state.stable && state.stable.version === version) return 'stable';
  if (state.canary && state.canary.version === version) return 'canary';
  return undefined;
}

export function trackState(state: RolloutState, track: Track): TrackState | null {
  return track === 'stable' ? state.stable : state.canary;
}

/** Every gRPC target a set of states refers to (the channels worth keeping open). */
export function targetsOf(states: Iterable<RolloutState>): Set<string> {
  const targets = new Set<string>();
  for (const s of states) {
    if (s.stable) targets.add(s.stable.target);
    if (s.canary) targets.add(s.canary.target);
  }
  return targets;
}

export type RouteDecision =
  | { readonly kind: 'route'; readonly track: Track; readonly version: string }
  | { readonly kind: 'no-upstream' }
  | { readonly kind: 'unknown-version' };

/**
 * The whole per-request decision. `requested` is the version the client asked for ('' = any).
 * `version` in the result is what to forward upstream: '' lets the pod serve what it has, so a
 * Deployment mid-roll never turns into NOT_FOUND errors. Static routes do not know versions
 * (''): a requested version then goes to the stable track and the pod judges it.
 */
export function decideRoute(state: RolloutState, requested: string, random: number): RouteDecision {
  if (requested === '') {
    const track = chooseTrack(state, random);
    return track ? { kind: 'route', track, version: '' } : { kind: 'no-upstream' };
  }
  const track = trackForVersion(state, requested);
  if (track) return { kind: 'route', track, version: requested };
  const unknown = state.stable?.version === '' ? 'stable' : state.canary?.version === '' ? 'canary' : undefined;
  return unknown ? { kind: 'route', track: unknown, version: requested } : { kind: 'unknown-version' };
}
