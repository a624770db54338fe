// Idempotent set-up of the NATS objects of docs/architecture.md#nats, with explicit retention, limits and
// de-duplication window. Safe to run from every promoter start and every `segserve publish`:
// missing objects are created, existing ones are brought to these limits (streams.update),
// nothing is ever deleted.
import { AckPolicy, DeliverPolicy, DiscardPolicy, RetentionPolicy, StorageType, jetstream, jetstreamManager } from '@nats-io/jetstream';
import type { ConsumerConfig, JetStreamClient, JetStreamManager, StreamConfig } from '@nats-io/jetstream';
import { Kvm, type KV } from '@nats-io/kv';
import { Objm, type ObjectStore } from '@nats-io/obj';
import { nanos, type NatsConnection } from '@nats-io/transport-node';
import { MAX_EXPERIMENT_RESULT_BYTES, NATS_NAMES } from '@segserve/proto';

const MiB = 1024 * 1024;
const DAY_MS = 24 * 3600 * 1000;

export interface NatsLimits {
  /** EXPERIMENTS: a re-published result inside this window is dropped by JetStream (ms). */
  readonly duplicateWindowMs: number;
  /** EXPERIMENTS: results are kept this long for audit and for redelivery (ms). */
  readonly experimentsMaxAgeMs: number;
  readonly experimentsMaxBytes: number;
  /** ROLLOUT_EVENTS: phase changes, check results, decisions (ms). */
  readonly eventsMaxAgeMs: number;
  readonly eventsMaxBytes: number;
  /** segserve_models: every uploaded version (bytes); a full store refuses new uploads. */
  readonly modelsMaxBytes: number;
  /** segserve_rollouts: revisions kept per model (≥ 5: the previous stables for rollback). */
  readonly rolloutsHistory: number;
  /** segserve_decisions: revisions kept per experiment id (in_progress → decided, resumes). */
  readonly decisionsHistory: number;
  readonly decisionsMaxBytes: number;
  readonly replicas: number;
}

export const DEFAULT_NATS_LIMITS: NatsLimits = Object.freeze({
  duplicateWindowMs: 2 * 60 * 1000,
  experimentsMaxAgeMs: 90 * DAY_MS,
  experimentsMaxBytes: 256 * MiB,
  eventsMaxAgeMs: 30 * DAY_MS,
  eventsMaxBytes: 256 * MiB,
  modelsMaxBytes: 4 * 1024 * MiB,
  rolloutsHistory: 10,
  decisionsHistory: 5,
  decisionsMaxBytes: 64 * MiB,
  replicas: 1,
});

export interface NatsObjects {
  readonly js: JetStreamClient;
  readonly jsm: JetStreamManager;
  readonly models: ObjectStore;
  readonly rollouts: KV;
  readonly decisions: KV;
}

function isNotFound(err: unknown): boolean {
  return err instanceof Error && /not found/i.test(err.message);
}

type DesiredStream = Partial<StreamConfig> & { name: string };

/** Creates the stream, or (when `reconcile`) brings an existing one to the desired limits. */
async function ensureStream(jsm: JetStreamManager, desired: DesiredStream, reconcile: boolean): Promise<void> {
  let current: StreamConfig;
  try {
    current = (await jsm.streams.info(desired.name)).config;
  } catch (err) {
    if (!isNotFound(err)) throw err;
    try {
      await jsm.streams.add(desired);
      return;
    } catch (addErr) {
      // Another process created it between our info and add: fall through to reconcile.
      if (!/already in use/i.test(addErr instanceof Error ? addErr.message : '')) throw addErr;
      current = (await jsm.streams.info(desired.name)).config;
    }
  }
  if (!reconcile) return;
  const changed = (Object.keys(desired) as (keyof StreamConfig)[]).filter(
    (k) => k !== 'name' && k !== 'storage' && k !== 'retention' && JSON.stringify(current[k]) !== JSON.stringify(desired[k]),
  );
  if (changed.length > 0) await jsm.streams.update(desired.name, { ...current, ...desired });
}

export interface EnsureOptions {
  /**
   * Bring existing objects to `limits` (default true: the promoter owns them). Publishers pass
   * false: they create what is missing but never change limits someone else set.
   */
  readonly reconcile?: boolean;
}

/**
 * Creates or updates EXPERIMENTS, ROLLOUT_EVENTS, the segserve_models object store and the
 * segserve_rollouts / segserve_decisions KV buckets, and returns handles on them.
 */
export async function ensureNatsObjects(nc: NatsConnection, limits: NatsLimits = DEFAULT_NATS_LIMITS, options: EnsureOptions = {}): Promise<NatsObjects> {
  const reconcile = options.reconcile ?? true;
  const jsm = await jetstreamManager(nc);
  const js = jetstream(nc);
  await ensureStream(jsm, {
    name: NATS_NAMES.experimentsStream,
    description: 'segserve experiment results, one signed ExperimentResult per message',
    subjects: [NATS_NAMES.experimentsSubject('>')],
    retention: RetentionPolicy.Limits,
    storage: StorageType.File,
    discard: DiscardPolicy.Old,
    duplicate_window: nanos(limits.duplicateWindowMs),
    max_age: nanos(limits.experimentsMaxAgeMs),
    max_bytes: limits.experimentsMaxBytes,
    max_msg_size: MAX_EXPERIMENT_RESULT_BYTES,
    num_replicas: limits.replicas,
  }, reconcile);
  await ensureStream(jsm, {
    name: NATS_NAMES.rolloutEventsStream,
    description: 'segserve rollout phase changes, check results and decisions',
    subjects: [NATS_NAMES.rolloutEventsSubject('>')],
    retention: RetentionPolicy.Limits,
    storage: StorageType.File,
    discard: DiscardPolicy.Old,
    max_age: nanos(limits.eventsMaxAgeMs),
    max_bytes: limits.eventsMaxBytes,
    max_msg_size: 256 * 1024,
    num_replicas: limits.replicas,
  }, reconcile);
  const kvm = new Kvm(js);
  const rollouts = await kvm.create(NATS_NAMES.rolloutsKv, { history: limits.rolloutsHistory, replicas: limits.replicas, maxValueSize: 256 * 1024, max_bytes: 64 * MiB, storage: StorageType.File });
  const decisions = await kvm.create(NATS_NAMES.decisionsKv, { history: limits.decisionsHistory, replicas: limits.replicas, maxValueSize: 256 * 1024, max_bytes: limits.decisionsMaxBytes, storage: StorageType.File });
  // kvm.create binds to an existing bucket as it is; bring its stream to our limits.
  await ensureStream(jsm, { name: `KV_${NATS_NAMES.rolloutsKv}`, max_msgs_per_subject: limits.rolloutsHistory, max_bytes: 64 * MiB }, reconcile);
  await ensureStream(jsm, { name: `KV_${NATS_NAMES.decisionsKv}`, max_msgs_per_subject: limits.decisionsHistory, max_bytes: limits.decisionsMaxBytes }, reconcile);
  const models = await new Objm(js).create(NATS_NAMES.modelsObjectStore, {
    description: 'segserve model versions: <model>/<version>/model.onnx and model.json',
    storage: StorageType.File,
    max_bytes: limits.modelsMaxBytes,
    replicas: limits.replicas,
  });
  await ensureStream(jsm, { name: `OBJ_${NATS_NAMES.modelsObjectStore}`, max_bytes: limits.modelsMaxBytes }, reconcile);
  return { js, jsm, models, rollouts, decisions };
}

export interface IntakeConsumerOptions {
  /** Redelivery after this long without an ack or a progress (`working`) signal (ms). */
  readonly ackWaitMs: number;
  /** Deliveries before JetStream gives up on a message (crash loops must not spin forever). */
  readonly maxDeliver: number;
}

export const DEFAULT_INTAKE_CONSUMER: IntakeConsumerOptions = Object.freeze({ ackWaitMs: 60_000, maxDeliver: 10 });

export function intakeConsumerName(model: string): string {
  return `intake-${model}`;
}

/** Durable for results of models without a policy: they are recorded and terminated. */
export const UNKNOWN_MODELS_CONSUMER = 'intake-unknown-models';

/**
 * The durable pull consumer of one model's results: one message in flight at a time
 * (`max_ack_pending: 1`), so a newer result waits behind the running one.
 */
export async function ensureIntakeConsumer(jsm: JetStreamManager, name: string, filterSubject: string, options: IntakeConsumerOptions = DEFAULT_INTAKE_CONSUMER): Promise<void> {
  const editable = {
    description: `segserve intake (${filterSubject})`,
    ack_wait: nanos(options.ackWaitMs),
    max_deliver: options.maxDeliver,
    max_ack_pending: 1,
  } satisfies Partial<ConsumerConfig>;
  try {
    const info = await jsm.consumers.info(NATS_NAMES.experimentsStream, name);
    const c = info.config;
    if (c.ack_wait !== editable.ack_wait || c.max_deliver !== editable.max_deliver || c.max_ack_pending !== 1 || c.description !== editable.description) {
      await jsm.consumers.update(NATS_NAMES.experimentsStream, name, editable);
    }
  } catch (err) {
    if (!isNotFound(err)) throw err;
    await jsm.consumers.add(NATS_NAMES.experimentsStream, {
      ...editable,
      durable_name: name,
      filter_subject: filterSubject,
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.All,
    });
  }
}
