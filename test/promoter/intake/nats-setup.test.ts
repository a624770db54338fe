// The NATS objects of docs/architecture.md#nats with explicit retention, limits and duplicate window,
// created idempotently; and the intake's durable consumers (one in flight per model).
import { afterAll, beforeAll, expect, it } from 'vitest';
import { AckPolicy, DeliverPolicy, RetentionPolicy, jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { connect, nanos, type NatsConnection } from '@nats-io/transport-node';
import { NATS_NAMES } from '@segserve/proto';
import { ensureIntakeConsumer, ensureNatsObjects, intakeConsumerName } from '../../../services/promoter/src/adapters/nats-setup.js';
import { startNats, type NatsServer } from '../../helpers/nats.js';
import { TEST_NATS_LIMITS } from './support.js';

let nats: NatsServer;
let nc: NatsConnection;
let jsm: JetStreamManager;

beforeAll(async () => {
  nats = await startNats();
  nc = await connect({ servers: nats.url });
  jsm = await jetstreamManager(nc);
});

afterAll(async () => {
  await nc?.close();
  await nats?.[Symbol.asyncDispose]();
});

it('creates every object with its limits, and a second run changes nothing', async () => {
  await ensureNatsObjects(nc, TEST_NATS_LIMITS);
  const streams = async () => Object.fromEntries(await Promise.all(['EXPERIMENTS', 'ROLLOUT_EVENTS', 'KV_segserve_rollouts', 'KV_segserve_decisions', 'OBJ_segserve_models'].map(async (n) => [n, (await jsm.streams.info(n)).config] as const)));
  const first = await streams();
  expect(first['EXPERIMENTS']).toMatchObject({
    subjects: ['segserve.experiments.>'],
    retention: RetentionPolicy.Limits,
    duplicate_window: nanos(120_000),
    max_age: nanos(TEST_NATS_LIMITS.experimentsMaxAgeMs),
    max_bytes: TEST_NATS_LIMITS.experimentsMaxBytes,
    max_msg_size: 65_536,
  });
  expect(first['ROLLOUT_EVENTS']).toMatchObject({ subjects: ['segserve.rollouts.>'], max_age: nanos(TEST_NATS_LIMITS.eventsMaxAgeMs) });
  expect(first['KV_segserve_rollouts']).toMatchObject({ max_msgs_per_subject: 10 });
  expect(first['KV_segserve_decisions']).toMatchObject({ max_msgs_per_subject: 5, max_bytes: TEST_NATS_LIMITS.decisionsMaxBytes });
  expect(first['OBJ_segserve_models']).toMatchObject({ max_bytes: TEST_NATS_LIMITS.modelsMaxBytes });
  await ensureNatsObjects(nc, TEST_NATS_LIMITS);
  expect(await streams()).toEqual(first);
});

it('brings existing objects to new limits; a publisher (reconcile: false) leaves them alone', async () => {
  await ensureNatsObjects(nc, { ...TEST_NATS_LIMITS, duplicateWindowMs: 30_000, rolloutsHistory: 20 });
  expect((await jsm.streams.info(NATS_NAMES.experimentsStream)).config.duplicate_window).toBe(nanos(30_000));
  expect((await jsm.streams.info('KV_segserve_rollouts')).config.max_msgs_per_subject).toBe(20);
  await ensureNatsObjects(nc, TEST_NATS_LIMITS, { reconcile: false });
  expect((await jsm.streams.info(NATS_NAMES.experimentsStream)).config.duplicate_window).toBe(nanos(30_000));
  await ensureNatsObjects(nc, TEST_NATS_LIMITS);
  expect((await jsm.streams.info(NATS_NAMES.experimentsStream)).config.duplicate_window).toBe(nanos(120_000));
});

it('intake consumers: durable, filtered, explicit ack, one message in flight; updated in place', async () => {
  await ensureIntakeConsumer(jsm, intakeConsumerName('facade-ads'), NATS_NAMES.experimentsSubject('facade-ads'), { ackWaitMs: 60_000, maxDeliver: 10 });
  const info = await jsm.consumers.info(NATS_NAMES.experimentsStream, 'intake-facade-ads');
  expect(info.config).toMatchObject({
    durable_name: 'intake-facade-ads',
    filter_subject: 'segserve.experiments.facade-ads',
    ack_policy: AckPolicy.Explicit,
    deliver_policy: DeliverPolicy.All,
    max_ack_pending: 1,
    ack_wait: nanos(60_000),
    max_deliver: 10,
  });
  await ensureIntakeConsumer(jsm, intakeConsumerName('facade-ads'), NATS_NAMES.experimentsSubject('facade-ads'), { ackWaitMs: 30_000, maxDeliver: 4 });
  const updated = await jsm.consumers.info(NATS_NAMES.experimentsStream, 'intake-facade-ads');
  expect(updated.config).toMatchObject({ ack_wait: nanos(30_000), max_deliver: 4, max_ack_pending: 1 });
  expect(updated.created).toBe(info.created);
});
