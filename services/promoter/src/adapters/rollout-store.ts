// Rollout state in KV `segserve_rollouts` (docs/architecture.md#nats): key <model> → RolloutRecord. Every
// write is compare-and-set on the KV revision the writer read, so of two promoters writing the
// same model one wins and the other re-reads (docs/reliability.md item 32). The record's own `revision`
// counter is bumped on each write for readers that only see the value (gateways, the CLI).
import type { KV, KvEntry } from '@nats-io/kv';
import { isValidModelName } from '@segserve/proto';
import type { RolloutRecord } from '../domain/rollout.js';

export interface StoredRollout {
  readonly record: RolloutRecord;
  /** KV revision of this value: the compare-and-set guard of the next write. */
  readonly revision: number;
}

export class RolloutConflictError extends Error {
  constructor(
    readonly model: string,
    readonly expectedRevision: number | null,
    options?: { cause?: unknown },
  ) {
    super(`rollout state of ${model}: ${expectedRevision === null ? 'already exists' : `revision ${expectedRevision} is no longer the latest`} (another writer)`, options);
    this.name = 'RolloutConflictError';
  }
}

function isWrongLastSequence(err: unknown): boolean {
  // JetStream API error 10071 "wrong last sequence": someone wrote since our read.
  return err instanceof Error && (/wrong last sequence/i.test(err.message) || (err as { code?: unknown }).code === 10071);
}

const encoder = new TextEncoder();

function decode(entry: KvEntry | null): StoredRollout | null {
  if (!entry || entry.operation !== 'PUT' || entry.length === 0) return null;
  return { record: entry.json<RolloutRecord>(), revision: entry.revision };
}

export class RolloutStore {
  constructor(private readonly kv: KV) {}

  async get(model: string): Promise<StoredRollout | null> {
    return decode(await this.kv.get(model));
  }

  /**
   * Writes `record` if the key is still at `expected` (null: the key must not exist yet).
   * Bumps the record's revision counter and stamps `updated_at`; throws RolloutConflictError
   * when another writer got there first.
   */
  async write(record: RolloutRecord, expected: StoredRollout | null, now: Date): Promise<StoredRollout> {
    if (!isValidModelName(record.model)) throw new Error(`invalid model name '${record.model}'`);
    const next: RolloutRecord = { ...record, revision: (expected?.record.revision ?? 0) + 1, updated_at: now.toISOString() };
    const data = encoder.encode(JSON.stringify(next));
    try {
      const revision = expected ? await this.kv.update(record.model, data, expected.revision) : await this.kv.create(record.model, data);
      return { record: next, revision };
    } catch (err) {
      if (isWrongLastSequence(err)) throw new RolloutConflictError(record.model, expected?.revision ?? null, { cause: err });
      throw err;
    }
  }

  /** Every model with a rollout state. */
  async list(): Promise<StoredRollout[]> {
    const out: StoredRollout[] = [];
    const keys: string[] = [];
    for await (const k of await this.kv.keys()) keys.push(k);
    for (const k of keys.sort()) {
      const s = await this.get(k);
      if (s) out.push(s);
    }
    return out;
  }

  /** Current value then every change of one model's state, until `signal` aborts. */
  watch(model: string, signal: AbortSignal): AsyncGenerator<StoredRollout> {
    return this.watchKey(model, signal);
  }

  /** Current values then every change of every model, until `signal` aborts. */
  watchAll(signal: AbortSignal): AsyncGenerator<StoredRollout> {
    return this.watchKey('>', signal);
  }

  private async *watchKey(key: string, signal: AbortSignal): AsyncGenerator<StoredRollout> {
    const it = await this.kv.watch({ key });
    const stop = (): void => it.stop();
    signal.addEventListener('abort', stop, { once: true });
    if (signal.aborted) it.stop();
    try {
      for await (const entry of it) {
        const s = decode(entry);
        if (s) yield s;
      }
    } finally {
      signal.removeEventListener('abort', stop);
      it.stop();
    }
  }
}
