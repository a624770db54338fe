// Where routes come from. Two implementations (static configuration, the NATS KV watch) and a
// combination of both; the router only sees this interface.
import type { RolloutState } from '@segserve/proto';

export type RolloutSnapshot = ReadonlyMap<string, RolloutState>;

export interface RolloutSource {
  /** The current state of every model this gateway routes. */
  snapshot(): RolloutSnapshot;
  /** Calls `listener` after every change; returns the unsubscribe function. */
  subscribe(listener: (snapshot: RolloutSnapshot) => void): () => void;
  close(): Promise<void>;
}

/** Routes fixed at start-up (SEGSERVE_UPSTREAMS). */
export class StaticRolloutSource implements RolloutSource {
  readonly #snapshot: RolloutSnapshot;

  constructor(states: readonly RolloutState[]) {
    this.#snapshot = new Map(states.map((s) => [s.model, s]));
  }

  snapshot(): RolloutSnapshot {
    return this.#snapshot;
  }

  subscribe(): () => void {
    return () => undefined;
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

/**
 * Followed state over static routes: a model present in `primary` (the rollout state the promoter
 * writes) is routed by it; `fallback` covers the others (e.g. a bootstrap route before the first
 * rollout, or while NATS has never been reachable).
 */
export class LayeredRolloutSource implements RolloutSource {
  readonly #listeners = new Set<(s: RolloutSnapshot) => void>();
  readonly #unsubscribe: Array<() => void>;
  #snapshot: RolloutSnapshot;

  constructor(
    readonly primary: RolloutSource,
    readonly fallback: RolloutSource,
  ) {
    this.#snapshot = this.#merge();
    const onChange = (): void => {
      this.#snapshot = this.#merge();
      for (const l of this.#listeners) l(this.#snapshot);
    };
    this.#unsubscribe = [primary.subscribe(onChange), fallback.subscribe(onChange)];
  }

  #merge(): RolloutSnapshot {
    return new Map([...this.fallback.snapshot(), ...this.primary.snapshot()]);
  }

  snapshot(): RolloutSnapshot {
    return this.#snapshot;
  }

  subscribe(listener: (snapshot: RolloutSnapshot) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  async close(): Promise<void> {
    for (const u of this.#unsubscribe) u();
    await Promise.all([this.primary.close(), this.fallback.close()]);
  }
}
