// docs/reliability.md item 38: NATS users per service with subject permissions. The real nats-server
// runs deploy/nats/nats.conf; real nats.js clients log in as each user and do what that
// service does (allowed) and what it must not do (refused).
import { connect } from '@nats-io/transport-node';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { Objm } from '@nats-io/obj';
import type { NatsConnection } from '@nats-io/nats-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFile } from 'node:fs/promises';
import { NATS_NAMES } from '@segserve/proto';
import { ensureNatsObjects } from '../../services/promoter/src/adapters/nats-setup.js';
import { NATS_CONF, NATS_USERS, startDeployedNats, type DeployedNats, type NatsUserName } from './nats-server.js';

let nats: DeployedNats;
const connections: NatsConnection[] = [];

/**
 * SEGSERVE_NATS_URL carries the credentials in Kubernetes (nats://user:password@host:4222).
 * nats.js v3 ignores a URL's user info, so a client must move it into `user`/`pass` — as here.
 */
function connectOptions(url: string): { servers: string; user?: string; pass?: string } {
  const u = new URL(url);
  if (!u.username) return { servers: url };
  return { servers: `${u.protocol}//${u.host}`, user: decodeURIComponent(u.username), pass: decodeURIComponent(u.password) };
}

async function login(user: NatsUserName): Promise<NatsConnection> {
  const nc = await connect({ ...connectOptions(nats.urlFor(user)), timeout: 10_000 });
  connections.push(nc);
  return nc;
}

/** Collects the permission violations the server reports to this connection. */
function violations(nc: NatsConnection): string[] {
  const seen: string[] = [];
  void (async () => {
    for await (const s of nc.status()) if (s.type === 'error') seen.push(String(s.error));
  })();
  return seen;
}

const MODEL = 'facade-ads';
const RESULT = JSON.stringify({ id: 'exp-1', model: MODEL, version: '9' });

beforeAll(async () => {
  nats = await startDeployedNats();
});
afterAll(async () => {
  for (const nc of connections) await nc.close().catch(() => undefined);
  await nats?.[Symbol.asyncDispose]();
});

describe('deploy/nats/nats.conf', () => {
  it('defines exactly the users the manifests give passwords to, each with explicit permissions', async () => {
    const text = await readFile(NATS_CONF, 'utf8');
    const users = [...text.matchAll(/^\s*user:\s*(\S+)\s*$/gm)].map((m) => m[1]);
    expect(users.sort()).toEqual(Object.keys(NATS_USERS).sort());
    for (const variable of Object.values(NATS_USERS)) expect(text).toContain(`password: $${variable}`);
    expect(text.match(/permissions:/g)?.length).toBe(users.length);
    // No user may publish to everything.
    expect(text).not.toMatch(/"\s*>\s*"/);
  });

  it('rejects a wrong password and an anonymous client', async () => {
    await expect(connect({ ...connectOptions(`nats://gateway:wrong@127.0.0.1:${nats.port}`), timeout: 10_000, reconnect: false })).rejects.toThrow(/Authorization/i);
    await expect(connect({ servers: `nats://127.0.0.1:${nats.port}`, timeout: 10_000, reconnect: false })).rejects.toThrow(/Authorization/i);
  });

  it('promoter creates the streams and buckets, writes state and events; cannot publish results', async () => {
    const nc = await login('promoter');
    const jsm = await jetstreamManager(nc);
    await jsm.streams.add({ name: NATS_NAMES.experimentsStream, subjects: ['segserve.experiments.>'] });
    await jsm.streams.add({ name: NATS_NAMES.rolloutEventsStream, subjects: ['segserve.rollouts.>'] });
    const kvm = new Kvm(nc);
    const rollouts = await kvm.create(NATS_NAMES.rolloutsKv, { history: 10 });
    const decisions = await kvm.create(NATS_NAMES.decisionsKv);
    await new Objm(nc).create(NATS_NAMES.modelsObjectStore);
    await rollouts.put(MODEL, JSON.stringify({ model: MODEL, phase: 'Idle', revision: 1 }));
    await decisions.create('exp-0', JSON.stringify({ outcome: 'rejected' }));
    await jetstream(nc).publish(NATS_NAMES.rolloutEventsSubject(MODEL), JSON.stringify({ phase: 'Idle' }));
    await expect(jetstream(nc).publish(NATS_NAMES.experimentsSubject(MODEL), RESULT)).rejects.toThrow(/permission/i);
  });

  it("the promoter's own idempotent set-up (ensureNatsObjects) runs as promoter, and again as publisher", async () => {
    await ensureNatsObjects(await login('promoter'));
    // `segserve publish` runs it too: once everything exists it only reads configurations.
    await ensureNatsObjects(await login('publisher'));
    // The gateway has no business there.
    await expect(ensureNatsObjects(await login('gateway'))).rejects.toThrow(/permission/i);
  });

  it('publisher uploads a model and publishes a result; cannot touch the rollout state', async () => {
    const nc = await login('publisher');
    const store = await new Objm(nc).open(NATS_NAMES.modelsObjectStore);
    await store.putBlob({ name: `${MODEL}/9/model.json` }, new TextEncoder().encode('{"name":"facade-ads"}'));
    await store.putBlob({ name: `${MODEL}/9/model.onnx` }, new Uint8Array(300_000).fill(7));
    const ack = await jetstream(nc).publish(NATS_NAMES.experimentsSubject(MODEL), RESULT, { msgID: 'exp-1' });
    expect(ack.stream).toBe(NATS_NAMES.experimentsStream);
    await expect(jetstream(nc).publish(`$KV.${NATS_NAMES.rolloutsKv}.${MODEL}`, '{}')).rejects.toThrow(/permission/i);
    await expect(new Kvm(nc).open(NATS_NAMES.rolloutsKv).then((kv) => kv.get(MODEL))).rejects.toThrow(/permission/i);
  });

  it('promoter consumes the result and reads the artifact', async () => {
    const nc = await login('promoter');
    const js = jetstream(nc);
    await (await jetstreamManager(nc)).consumers.add(NATS_NAMES.experimentsStream, { durable_name: 'promoter', ack_policy: 'explicit' as never });
    const consumer = await js.consumers.get(NATS_NAMES.experimentsStream, 'promoter');
    const msg = await consumer.next({ expires: 5_000 });
    expect(msg?.string()).toBe(RESULT);
    await msg?.ackAck();
    const store = await new Objm(nc).open(NATS_NAMES.modelsObjectStore);
    const info = await store.info(`${MODEL}/9/model.onnx`);
    expect(info?.size).toBe(300_000);
  });

  it('inference reads a model from the object store; cannot write one', async () => {
    const nc = await login('inference');
    const store = await new Objm(nc).open(NATS_NAMES.modelsObjectStore);
    const bytes = await store.getBlob(`${MODEL}/9/model.onnx`);
    expect(bytes?.length).toBe(300_000);
    await expect(store.putBlob({ name: `${MODEL}/10/model.onnx` }, new Uint8Array(10))).rejects.toThrow(/permission/i);
    await expect(jetstream(nc).publish(NATS_NAMES.experimentsSubject(MODEL), RESULT)).rejects.toThrow(/permission/i);
  });

  it('gateway watches the rollout state; its publish to segserve.experiments.x is refused', async () => {
    const nc = await login('gateway');
    const seen = violations(nc);
    const kv = await new Kvm(nc).open(NATS_NAMES.rolloutsKv);
    expect((await kv.get(MODEL))?.json<{ phase: string }>().phase).toBe('Idle');
    const watch = await kv.watch({ key: MODEL });
    const first = await watch[Symbol.asyncIterator]().next();
    expect(first.value?.key).toBe(MODEL);
    watch.stop();

    // Core publish (fire and forget): the server refuses it and tells the connection.
    nc.publish('segserve.experiments.x', RESULT);
    await nc.flush();
    await expect.poll(() => seen.join('\n'), { timeout: 10_000 }).toMatch(/Permissions Violation for Publish to "segserve\.experiments\.x"/);
    // JetStream publish: the client sees the refusal too.
    await expect(jetstream(nc).publish('segserve.experiments.x', RESULT)).rejects.toThrow(/permission/i);
    await expect(kv.put(MODEL, '{}')).rejects.toThrow(/permission/i);
    await expect(new Objm(nc).open(NATS_NAMES.modelsObjectStore)).rejects.toThrow(/permission/i);

    // Nothing reached the stream: still only the publisher's one result.
    const admin = await login('promoter');
    const info = await (await jetstreamManager(admin)).streams.info(NATS_NAMES.experimentsStream);
    expect(info.state.messages).toBe(1);
  });

  it('observer reads the rollout state and decisions; writes nothing', async () => {
    const nc = await login('observer');
    const kvm = new Kvm(nc);
    expect((await (await kvm.open(NATS_NAMES.rolloutsKv)).get(MODEL))?.json<{ phase: string }>().phase).toBe('Idle');
    expect((await (await kvm.open(NATS_NAMES.decisionsKv)).get('exp-0'))?.json<{ outcome: string }>().outcome).toBe('rejected');
    await expect((await kvm.open(NATS_NAMES.rolloutsKv)).put(MODEL, '{}')).rejects.toThrow(/permission/i);
    await expect(jetstream(nc).publish(NATS_NAMES.experimentsSubject(MODEL), RESULT)).rejects.toThrow(/permission/i);
  });
});
