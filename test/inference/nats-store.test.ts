// `segserve inference` loading its model from the NATS object store `segserve_models`
// (docs/architecture.md#nats) against a real nats-server: with the read-only permissions of
// deploy/nats/nats.conf, a local cache, digest checks, NOT_SERVING with a clear log line while
// the version is missing or corrupt, and recovery once it is uploaded.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as grpc from '@grpc/grpc-js';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { Objm, type ObjectStore } from '@nats-io/obj';
import { readFile, readdir } from 'node:fs/promises';
import path from 'node:path';
import { startNats, type NatsServer } from '../helpers/nats.js';
import { spawnSegserve, tempDir, type Spawned, type TempDir } from '../helpers/process.js';
import { MODELS, clients, healthStatus, manifestOf, png, segment, syntheticImage } from './helpers.js';
import { parseStartupLine } from '@segserve/proto';

// The inference user's publish permissions, as in deploy/nats/nats.conf: object-store reads only.
const INFERENCE_PUBLISH = [
  '$JS.API.INFO',
  '$JS.API.STREAM.INFO.OBJ_segserve_models',
  '$JS.API.STREAM.MSG.GET.OBJ_segserve_models',
  '$JS.API.DIRECT.GET.OBJ_segserve_models',
  '$JS.API.DIRECT.GET.OBJ_segserve_models.>',
  '$JS.API.CONSUMER.CREATE.OBJ_segserve_models',
  '$JS.API.CONSUMER.CREATE.OBJ_segserve_models.>',
  '$JS.API.CONSUMER.INFO.OBJ_segserve_models.*',
  '$JS.API.CONSUMER.DELETE.OBJ_segserve_models.*',
  '$JS.FC.OBJ_segserve_models.>',
];
const SECRET = 's3cret-inference-pw';

let nats: NatsServer;
let admin: NatsConnection;
let store: ObjectStore;
let cache: TempDir;
const image = await png(syntheticImage(120, 80, 1));

beforeAll(async () => {
  nats = await startNats({ users: [{ user: 'admin', password: 'admin' }, { user: 'inference', password: SECRET, publish: INFERENCE_PUBLISH, subscribe: ['_INBOX.>'] }] });
  admin = await connect({ servers: nats.url, user: 'admin', pass: 'admin' });
  store = await new Objm(admin).create('segserve_models');
  cache = await tempDir('segserve-model-cache-');
});

afterAll(async () => {
  await admin?.close();
  await cache?.[Symbol.asyncDispose]();
  await nats?.[Symbol.asyncDispose]();
});

async function upload(name: string, version: string, fromDir: string, onnx?: Buffer): Promise<void> {
  const manifest = { ...manifestOf(fromDir), name, version };
  await store.putBlob({ name: `${name}/${version}/model.onnx` }, onnx ?? (await readFile(path.join(fromDir, 'model.onnx'))));
  await store.putBlob({ name: `${name}/${version}/model.json` }, new TextEncoder().encode(JSON.stringify(manifest)));
}

function spawnFromNats(name: string, version: string, env: Record<string, string> = {}): Spawned {
  return spawnSegserve(['inference', '--grpc-port', '0', '--metrics-port', '0'], {
    env: { SEGSERVE_HOST: '127.0.0.1', SEGSERVE_NATS_URL: nats.urlFor('inference'), SEGSERVE_MODEL_NAME: name, SEGSERVE_MODEL_VERSION: version, SEGSERVE_MODEL_CACHE_DIR: cache.path, ...env },
  });
}

async function expectServes(proc: Spawned, name: string, version: string): Promise<void> {
  const line = await proc.waitForStartup('inference', 60_000);
  expect([line.model, line.version]).toEqual([name, version]);
  const c = clients(`127.0.0.1:${line.grpc_port}`);
  try {
    const r = await segment(c, image, { model: name });
    expect(r.error?.details).toBeUndefined();
    expect([r.value?.model, r.value?.version, r.value?.width]).toEqual([name, version, 120]);
  } finally {
    c.close();
  }
}

describe('model from the NATS object store', () => {
  it('loads a published version with read-only permissions, caches it, never logs the password', async () => {
    await upload('ads', '1', MODELS.seg);
    await using proc = spawnFromNats('ads', '1');
    await expectServes(proc, 'ads', '1');
    const sha = manifestOf(MODELS.seg).sha256;
    expect(await readdir(path.join(cache.path, 'ads'))).toContain(`1-${sha.slice(0, 12)}`);
    expect(proc.output()).not.toContain(SECRET);
    expect(proc.output()).toContain(`nats://127.0.0.1:${nats.port} segserve_models/ads/1`);
  });

  it('stays NOT_SERVING while the version is missing, says so, and serves once it is uploaded', async () => {
    await using proc = spawnFromNats('ads', '2');
    const failed = await proc.waitForJson<{ reason: string; error: { message: string } }>((o) => o['msg'] === 'model load failed', 60_000);
    expect(failed.reason).toBe('missing');
    expect(failed.error.message).toMatch(/segserve_models\/ads\/2\/model.json does not exist/);
    const { grpc_port } = await proc.waitForJson<{ grpc_port: number }>((o) => o['msg'] === 'starting');
    const c = clients(`127.0.0.1:${grpc_port}`);
    try {
      expect(await healthStatus(c)).toBe('NOT_SERVING');
      expect((await segment(c, image)).error?.code).toBe(grpc.status.UNAVAILABLE);
    } finally {
      c.close();
    }
    await upload('ads', '2', MODELS.seg2);
    await expectServes(proc, 'ads', '2');
  });

  it('refuses a model.onnx whose bytes do not match model.json', async () => {
    await upload('ads', '3', MODELS.seg, Buffer.from(await readFile(path.join(MODELS.seg2, 'model.onnx'))));
    await using proc = spawnFromNats('ads', '3');
    const failed = await proc.waitForJson<{ reason: string; error: { message: string } }>((o) => o['msg'] === 'model load failed', 60_000);
    expect(failed.reason).toBe('digest_mismatch');
    expect(failed.error.message).toMatch(/segserve_models\/ads\/3\/model.onnx has sha256 [0-9a-f]{64} but model.json says/);
    expect(proc.lines().some((l) => parseStartupLine('inference', l))).toBe(false);
  });

  it('refuses a version whose digest is not the pinned SEGSERVE_MODEL_SHA256', async () => {
    await using proc = spawnFromNats('ads', '1', { SEGSERVE_MODEL_SHA256: 'a'.repeat(64) });
    const failed = await proc.waitForJson<{ reason: string; error: { message: string } }>((o) => o['msg'] === 'model load failed', 60_000);
    expect(failed.reason).toBe('digest_mismatch');
    expect(failed.error.message).toMatch(/SEGSERVE_MODEL_SHA256 is a{64}/);
  });

  it('with a pinned digest, starts from the local cache while NATS is down', async () => {
    const sha = manifestOf(MODELS.seg).sha256;
    await nats.stop();
    try {
      await using proc = spawnFromNats('ads', '1', { SEGSERVE_MODEL_SHA256: sha });
      await expectServes(proc, 'ads', '1');
      expect(proc.output()).toMatch(/"msg":"NATS unreachable; loading the pinned model from the local cache"/);
    } finally {
      await nats.restart();
    }
  });
});
