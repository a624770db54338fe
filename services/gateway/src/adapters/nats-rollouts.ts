// Follows KV `segserve_rollouts` (docs/architecture.md#nats): key <model> → RolloutState. The gateway needs
// nothing else to route. When NATS is away the last known state keeps serving; the client
// reconnects forever and the watch (an ordered consumer) resumes where it stopped, so changes
// made meanwhile arrive when NATS returns.
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { Kvm, type KV, type KvWatchEntry } from '@nats-io/kv';
import { NATS_NAMES, parseNatsUrl, redactNatsUrl, type RolloutState } from '@segserve/proto';
import { parseRolloutEntry } from '../domain/rollout-entry.js';
import type { Logger } from '@segserve/runtime';
import type { RolloutSnapshot, RolloutSource } from './rollout-source.js';

export interface NatsRolloutOptions {
  readonly url: string;
  readonly logger: Logger;
  readonly bucket?: string;
  /** Wait between attempts while the bucket does not exist or the watch broke, ms. */
  readonly retryMs?: number;
}

export class NatsRolloutSource implements RolloutSource {
  readonly #options: NatsRolloutOptions;
  readonly #states = new Map<string, RolloutState>();
  readonly #listeners = new Set<(s: RolloutSnapshot) => void>();
  #snapshot: RolloutSnapshot = new Map();
  #nc: NatsConnection | undefined;
  #watch: { stop(): void } | undefined;
  #closed = false;
  #wake: (() => void) | undefined;
  readonly #loop: Promise<void>;

  /** Starts connecting in the background; the gateway serves (or answers 503) meanwhile. */
  constructor(options: NatsRolloutOptions) {
    this.#options = options;
    this.#loop = this.#run();
  }

  snapshot(): RolloutSnapshot {
    return this.#snapshot;
  }

  subscribe(listener: (snapshot: RolloutSnapshot) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#wake?.();
    this.#watch?.stop();
    await this.#nc?.close().catch(() => undefined);
    // A connect attempt in progress ends by its own timeout; shutdown does not wait for it.
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.#loop, new Promise((r) => (timer = setTimeout(r, 1000)))]);
    clearTimeout(timer);
  }

  #publish(): void {
    this.#snapshot = new Map(this.#states);
    for (const l of this.#listeners) l(this.#snapshot);
  }

  async #pause(): Promise<void> {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, this.#options.retryMs ?? 1000);
      this.#wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  async #connect(): Promise<NatsConnection> {
    const target = parseNatsUrl(this.#options.url);
    // No waitOnFirstConnect: a first attempt that fails returns here and the loop retries, so
    // close() is never stuck behind a connect that cannot be cancelled.
    const nc = await connect({
      ...target,
      name: 'segserve-gateway',
      timeout: 5000,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 1000,
    });
    this.#options.logger.info('nats connected', { servers: redactNatsUrl(this.#options.url) });
    void (async () => {
      for await (const s of nc.status()) {
        if (s.type === 'disconnect') this.#options.logger.warn('nats disconnected; routing with the last known state');
        else if (s.type === 'reconnect') this.#options.logger.info('nats reconnected');
      }
    })().catch(() => undefined);
    return nc;
  }

  async #run(): Promise<void> {
    const { logger } = this.#options;
    const bucket = this.#options.bucket ?? NATS_NAMES.rolloutsKv;
    let reported = '';
    while (!this.#closed) {
      try {
        this.#nc ??= await this.#connect();
        if (this.#closed) await this.#nc.close();
        const kv = await new Kvm(this.#nc).open(bucket);
        await this.#follow(kv, bucket);
      } catch (err) {
        if (this.#closed) break;
        const message = err instanceof Error ? err.message : String(err);
        // One line per distinct problem, not one per retry.
        if (message !== reported) logger.warn('rollout state unavailable; retrying', { bucket, error: message });
        reported = message;
        await this.#pause();
      }
    }
  }

  /** Watches every key until the watch ends (then the caller starts over). */
  async #follow(kv: KV, bucket: string): Promise<void> {
    const watch = await kv.watch({ key: '>' });
    this.#watch = watch;
    // Keys deleted while no watch ran would otherwise linger: forget what is gone now.
    const present = new Set<string>();
    for await (const k of await kv.keys()) present.add(k);
    let dropped = false;
    for (const model of [...this.#states.keys()]) {
      if (!present.has(model)) dropped = this.#states.delete(model) || dropped;
    }
    if (dropped) this.#publish();
    this.#options.logger.info('watching rollout state', { bucket });
    for await (const entry of watch) {
      if (this.#closed) break;
      this.#apply(entry);
    }
  }

  #apply(entry: KvWatchEntry): void {
    const { logger } = this.#options;
    if (entry.operation === 'DEL' || entry.operation === 'PURGE') {
      if (this.#states.delete(entry.key)) {
        logger.info('model route removed', { model: entry.key });
        this.#publish();
      }
      return;
    }
    const parsed = parseRolloutEntry(entry.key, entry.string());
    if (!parsed.ok) {
      logger.warn('ignoring invalid rollout state; keeping the last good one', { model: entry.key, revision: entry.revision, error: parsed.message });
      return;
    }
    this.#states.set(entry.key, parsed.state);
    logger.info('rollout state', {
      model: entry.key,
      revision: entry.revision,
      phase: parsed.state.phase,
      stable: parsed.state.stable?.version ?? null,
      canary: parsed.state.canary?.version ?? null,
      canary_weight: parsed.state.canary?.weight ?? 0,
    });
    this.#publish();
  }
}
