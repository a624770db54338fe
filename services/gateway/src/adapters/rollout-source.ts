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

/** The current snapshot of a changing source and the listeners told of each change. */
export class SnapshotFeed {
  readonly #listeners = new Set<(s: RolloutSnapshot) => void>();
  #current: RolloutSnapshot;

  constructor(initial: RolloutSnapshot = new Map()) {
    this.#current = initial;
  }

  get current(): RolloutSnapshot {
    return this.#current;
  }

  publish(next: RolloutSnapshot): void {
    this.#current = next;
    for (const l of this.#listeners) l(next);
  }

  subscribe(listener: (snapshot: RolloutSnapshot) => void): () => void {
    this.#listeners.add(listener);
    return () => void this.#listeners.delete(listener);
  }
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
  readonly #feed: SnapshotFeed;
  readonly #unsubscribe: Array<() => void>;

  constructor(
    readonly primary: RolloutSource,
    readonly fallback: RolloutSource,
  ) {
    this.#feed = new SnapshotFeed(this.#merge());
    const onChange = (): void => this.#feed.publish(this.#merge());
    this.#unsubscribe = [primary.subscribe(onChange), fallback.subscribe(onChange)];
  }

  #merge(): RolloutSnapshot {
    return new Map([...this.fallback.snapshot(), ...this.primary.snapshot()]);
  }

  snapshot(): RolloutSnapshot {
    return this.#feed.current;
  }

  subscribe(listener: (snapshot: RolloutSnapshot) => void): () => void {
    return this.#feed.subscribe(listener);
  }

  async close(): Promise<void> {
    for (const u of this.#unsubscribe) u();
    await Promise.all([this.primary.close(), this.fallback.close()]);
  }
}
