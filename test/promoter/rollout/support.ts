// Shared by the rollout tests: NATS limits that fit the test server's 2 GB JetStream store, and a
// rollout state store in memory with the KV bucket's compare-and-set.
import { DEFAULT_NATS_LIMITS, type NatsLimits } from '../../../services/promoter/src/adapters/nats-setup.js';
import type { RolloutRecord } from '../../../services/promoter/src/domain/rollout.js';
import type { RolloutStateStore, StoredRollout } from '../../../services/promoter/src/rollout/controller.js';

export const TEST_NATS_LIMITS: NatsLimits = { ...DEFAULT_NATS_LIMITS, modelsMaxBytes: 512 * 1024 * 1024, experimentsMaxBytes: 64 * 1024 * 1024, eventsMaxBytes: 64 * 1024 * 1024 };

/** Rollout records in memory; a write with a stale expected revision fails like the KV bucket's. */
export function memoryRolloutStore(): RolloutStateStore & { values: Map<string, StoredRollout> } {
  const values = new Map<string, StoredRollout>();
  let seq = 0;
  return {
    values,
    get: (m) => Promise.resolve(values.get(m) ?? null),
    write: (record: RolloutRecord, expected, now) => {
      if ((values.get(record.model)?.revision ?? null) !== (expected?.revision ?? null)) return Promise.reject(Object.assign(new Error('conflict'), { name: 'RolloutConflictError' }));
      const stored = { record: { ...record, revision: record.revision + 1, updated_at: now.toISOString() }, revision: ++seq };
      values.set(record.model, stored);
      return Promise.resolve(stored);
    },
    list: () => Promise.resolve([...values.values()]),
  };
}
