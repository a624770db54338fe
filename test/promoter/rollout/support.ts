// Shared by the rollout tests: NATS limits that fit the test server's 2 GB JetStream store, a
// rollout state store in memory with the KV bucket's compare-and-set, and a fast rollout of the
// real controller with fakes around a deployer.
import { silentLogger } from '@segserve/runtime';
import { DEFAULT_NATS_LIMITS, type NatsLimits } from '../../../services/promoter/src/adapters/nats-setup.js';
import type { ModelRef, TrackMetrics } from '../../../services/promoter/src/domain/ports.js';
import { initialRecord, type RolloutRecord } from '../../../services/promoter/src/domain/rollout.js';
import type { RolloutStateStore, StoredRollout } from '../../../services/promoter/src/rollout/controller.js';
import { Rollouts } from '../../../services/promoter/src/rollout/rollouts.js';
import { PromoterTelemetry } from '../../../services/promoter/src/rollout/telemetry.js';

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

type RolloutsOptions = ConstructorParameters<typeof Rollouts>[0];

export const HEALTHY: TrackMetrics = { requests: 100, errors: 0, latencyP95Seconds: 0.3, rssBytes: 1, memoryLimitBytes: 10 };

/**
 * `candidate` of facade-ads rolled out over the stable `stable` (served at `stableTarget`) by the
 * real controller through `deployer`: verified at once, a canary of two 30 ms steps whose canary
 * track reports `canary` (the stable reports HEALTHY), a 60 ms bake. Returns the outcome and the store.
 */
export async function runFastRollout(options: {
  readonly deployer: RolloutsOptions['deployer'];
  readonly events: RolloutsOptions['events'];
  readonly stable: ModelRef;
  readonly stableTarget: string;
  readonly candidate: ModelRef;
  readonly id: string;
  readonly canary?: TrackMetrics;
}) {
  const store = memoryRolloutStore();
  await store.write(initialRecord(options.stable.model, { version: options.stable.version, sha256: options.stable.sha256, target: options.stableTarget }, new Date()), null, new Date());
  const canary = options.canary ?? HEALTHY;
  const rollouts = new Rollouts({
    store,
    deployer: options.deployer,
    verifier: { verify: (c) => Promise.resolve({ ok: true, reasonCode: 'verified', reason: 'ok', claimed: c.claimed, measured: c.claimed, stableMeasured: null }) },
    metrics: { name: 'fake', isOnline: () => Promise.resolve(true), trackMetrics: (_m, _v, track) => Promise.resolve(track === 'canary' ? canary : HEALTHY) },
    replayer: { replay: () => Promise.resolve({ sent: 0, failed: 0 }) },
    events: options.events,
    telemetry: new PromoterTelemetry(),
    settings: () => ({ canary: { steps: [10, 50], intervalMs: 30, minRequests: 1, maxFailedChecks: 1, maxErrorRate: 0.01, maxLatencyRatio: 1.5, maxRssFraction: 0.9, bakeMs: 60, bakeExtensions: 2, onNoEvidence: 'fail', maxHolds: 10 }, readyTimeoutMs: 10_000, pollMs: 5 }),
    log: silentLogger,
    clock: () => new Date(),
    maxSleepMs: 20,
  });
  const outcome = await rollouts.run({ id: options.id, ref: options.candidate, claimed: {}, goldenSha256: 'g' }, { working: () => undefined, signal: new AbortController().signal });
  await rollouts.close();
  return { outcome, store };
}
