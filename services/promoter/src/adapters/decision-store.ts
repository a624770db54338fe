// Decision records in KV `segserve_decisions` (docs/architecture.md#nats): key = experiment id. `create`
// is the idempotency gate (exactly one writer wins it, by KV revision); later writes are
// compare-and-set on the revision the writer read, so two promoters never both complete a
// record.
import type { KV } from '@nats-io/kv';
import type { DecisionRecord } from '@segserve/proto';

export interface StoredDecision {
  readonly record: DecisionRecord;
  readonly revision: number;
}

export type CreateOutcome = ({ readonly created: true } & StoredDecision) | ({ readonly created: false } & StoredDecision);

export class DecisionConflictError extends Error {
  constructor(
    readonly key: string,
    readonly expectedRevision: number,
    options?: { cause?: unknown },
  ) {
    super(`decision ${key}: revision ${expectedRevision} is no longer the latest (another writer)`, options);
    this.name = 'DecisionConflictError';
  }
}

/** The bucket could not be read or written (full, unavailable, timed out): not a CAS conflict. */
export class DecisionStoreError extends Error {
  constructor(operation: string, key: string, cause: unknown) {
    super(`decisions bucket: ${operation} ${key} failed: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
    this.name = 'DecisionStoreError';
  }
}

function isWrongLastSequence(err: unknown): boolean {
  // JetStream API error 10071 "wrong last sequence": the key exists / moved on.
  return err instanceof Error && (/wrong last sequence/i.test(err.message) || (err as { code?: unknown }).code === 10071);
}

const encoder = new TextEncoder();

export class DecisionStore {
  constructor(private readonly kv: KV) {}

  /** Creates the record unless its key exists; then returns the existing one instead. */
  async create(record: DecisionRecord): Promise<CreateOutcome> {
    try {
      const revision = await this.kv.create(record.key, encoder.encode(JSON.stringify(record)));
      return { created: true, record, revision };
    } catch (err) {
      if (!isWrongLastSequence(err)) throw new DecisionStoreError('create', record.key, err);
      const existing = await this.get(record.key);
      if (!existing) throw new DecisionStoreError('create', record.key, err); // deleted in between: retried via redelivery
      return { created: false, ...existing };
    }
  }

  async get(key: string): Promise<StoredDecision | null> {
    const entry = await this.kv.get(key).catch((err: unknown) => {
      throw new DecisionStoreError('get', key, err);
    });
    if (!entry || entry.operation !== 'PUT' || entry.length === 0) return null;
    return { record: entry.json<DecisionRecord>(), revision: entry.revision };
  }

  /** Replaces the record if `expectedRevision` is still the latest; returns the new revision. */
  async update(record: DecisionRecord, expectedRevision: number): Promise<number> {
    try {
      return await this.kv.update(record.key, encoder.encode(JSON.stringify(record)), expectedRevision);
    } catch (err) {
      if (isWrongLastSequence(err)) throw new DecisionConflictError(record.key, expectedRevision, { cause: err });
      throw new DecisionStoreError('update', record.key, err);
    }
  }

  /** Every record (optionally of one model), oldest first. */
  async list(model?: string): Promise<DecisionRecord[]> {
    const keys: string[] = [];
    for await (const key of await this.kv.keys()) keys.push(key);
    const records: DecisionRecord[] = [];
    for (const key of keys) {
      const stored = await this.get(key);
      if (stored && (model === undefined || stored.record.model === model)) records.push(stored.record);
    }
    return records.sort((a, b) => a.received_at.localeCompare(b.received_at) || a.stream_seq - b.stream_seq);
  }
}
