// Turns "model X (version Y)" into an upstream for one request: reads the current rollout
// state, lets the pure decision pick a track, and hands out the channel for that track's target.
import { SegserveError, type RolloutState, type Track } from '@segserve/proto';
import { decideRoute, routeWeights, targetsOf, trackState } from '../domain/routing.js';
import type { GatewayMetrics } from '../adapters/metrics.js';
import type { RolloutSnapshot, RolloutSource } from '../adapters/rollout-source.js';
import type { Upstream, UpstreamPool } from '../adapters/upstreams.js';
import type { Logger } from '@segserve/runtime';

export interface Route {
  readonly model: string;
  readonly track: Track;
  /** The version to forward ('' = whatever the pod serves). */
  readonly version: string;
  readonly upstream: Upstream;
}

export interface RouterOptions {
  readonly source: RolloutSource;
  readonly pool: UpstreamPool;
  readonly metrics: GatewayMetrics;
  readonly logger: Logger;
  /** Uniform in [0, 1); injected so tests can pin or count the split. */
  readonly random?: () => number;
}

export class Router {
  readonly #options: RouterOptions;
  readonly #random: () => number;
  readonly #unsubscribe: () => void;
  #known = new Set<string>();
  /** Version last served per model and track: static routes learn versions from responses. */
  readonly #served = new Map<string, string>();

  constructor(options: RouterOptions) {
    this.#options = options;
    this.#random = options.random ?? Math.random;
    this.#apply(options.source.snapshot());
    this.#unsubscribe = options.source.subscribe((s) => this.#apply(s));
  }

  #apply(snapshot: RolloutSnapshot): void {
    const { metrics, pool, logger } = this.#options;
    for (const model of this.#known) if (!snapshot.has(model)) metrics.forgetModel(model);
    for (const state of snapshot.values()) {
      const w = routeWeights(state);
      metrics.setRouteWeight(state.model, 'stable', w.stable);
      metrics.setRouteWeight(state.model, 'canary', w.canary);
    }
    this.#known = new Set(snapshot.keys());
    const retired = pool.retain(targetsOf(snapshot.values()));
    if (retired.length > 0) logger.debug('retiring upstream channels no longer routed to', { count: retired.length });
  }

  /** Whether the gateway routes `model` at all (bounds metric label values). */
  knows(model: string): boolean {
    return this.#options.source.snapshot().has(model);
  }

  state(model: string): RolloutState | undefined {
    return this.#options.source.snapshot().get(model);
  }

  states(): RolloutState[] {
    return [...this.#options.source.snapshot().values()].sort((a, b) => a.model.localeCompare(b.model));
  }

  /** Chooses the upstream for one request, or throws MODEL_NOT_FOUND / UNAVAILABLE. */
  route(model: string, requestedVersion = ''): Route {
    const state = this.state(model);
    if (!state) throw new SegserveError('MODEL_NOT_FOUND', `model '${model}' is not served here`);
    const decision = decideRoute(requestedVersion === '' ? state : this.#withServedVersions(state), requestedVersion, this.#random());
    if (decision.kind === 'unknown-version') throw new SegserveError('MODEL_NOT_FOUND', `model '${model}' has no version '${requestedVersion}' in service`);
    const track = decision.kind === 'route' ? trackState(state, decision.track) : null;
    if (decision.kind !== 'route' || !track) throw new SegserveError('UNAVAILABLE', `model '${model}' has no upstream right now`);
    return { model, track: decision.track, version: decision.version, upstream: this.#options.pool.get(track.target) };
  }

  /** Static routes name no versions: fill in the ones the tracks were seen serving. */
  #withServedVersions(state: RolloutState): RolloutState {
    const fill = <T extends { version: string }>(track: T | null, name: Track): T | null =>
      track && track.version === '' ? { ...track, version: this.#served.get(`${state.model}/${name}`) ?? '' } : track;
    return { ...state, stable: fill(state.stable, 'stable'), canary: fill(state.canary, 'canary') };
  }

  /** The upstream of one track, for metadata calls (no weighted choice). */
  trackUpstream(model: string, track: Track): Upstream | undefined {
    const t = this.state(model);
    const ts = t ? trackState(t, track) : null;
    return ts ? this.#options.pool.get(ts.target) : undefined;
  }

  noteServed(model: string, track: Track, version: string): void {
    if (version !== '') this.#served.set(`${model}/${track}`, version);
  }

  /** The version a track serves: from the rollout state, else the last one seen answering. */
  trackVersion(model: string, track: Track): string {
    const t = this.state(model);
    const ts = t ? trackState(t, track) : null;
    if (!ts) return '';
    return ts.version !== '' ? ts.version : (this.#served.get(`${model}/${track}`) ?? '');
  }

  close(): void {
    this.#unsubscribe();
  }
}
