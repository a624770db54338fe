// The gRPC edge and routing against in-process fake upstreams.
import * as grpc from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { createRequire } from 'node:module';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ERROR_CODE_METADATA_KEY, loadProtos, type RolloutState, type SegmentResponse__Output } from '@segserve/proto';
import type { RolloutSnapshot, RolloutSource } from '../../../services/gateway/src/adapters/rollout-source.js';
import { fakeImage, fakeMaskPng, startFakeUpstream, type FakeUpstream } from './fake-upstream.js';
import { form, startHarness, type Harness } from './harness.js';

const KEY = 'grpc-key-0123456789abcdef';
const protos = loadProtos();

function clients(address: string) {
  const creds = grpc.credentials.createInsecure();
  const opts = { 'grpc.max_send_message_length': 64 * 1024 * 1024 };
  return {
    segmenter: new protos.segmenter.segserve.v1.Segmenter(address, creds, opts),
    oip: new protos.predictV2.inference.GRPCInferenceService(address, creds, opts),
    health: new protos.health.grpc.health.v1.Health(address, creds, opts),
  };
}

type Outcome<T> = { ok: true; value: T; headers: grpc.Metadata } | { ok: false; code: number; details: string; segserveCode: unknown; retryAfter: unknown };

function call<T>(start: (md: grpc.Metadata, cb: grpc.requestCallback<T>) => grpc.ClientUnaryCall, metadata = new grpc.Metadata()): Promise<Outcome<T>> {
  return new Promise((resolve) => {
    let headers = new grpc.Metadata();
    const c = start(metadata, (err, value) => {
      if (err) resolve({ ok: false, code: err.code, details: err.details, segserveCode: err.metadata?.get(ERROR_CODE_METADATA_KEY)[0], retryAfter: err.metadata?.get('retry-after')[0] });
      else resolve({ ok: true, value: value as T, headers });
    });
    c.on('metadata', (md: grpc.Metadata) => (headers = md));
  });
}

const segmentVia = (c: ReturnType<typeof clients>, req: { model: string; image: Buffer; version?: string }, md?: grpc.Metadata) =>
  call<SegmentResponse__Output>((m, cb) => c.segmenter.Segment({ ...req, mask_format: 'PNG' }, m, { deadline: Date.now() + 10_000 }, cb), md);

describe('gRPC edge', () => {
  let up: FakeUpstream;
  let h: Harness;
  let c: ReturnType<typeof clients>;
  beforeAll(async () => {
    up = await startFakeUpstream({ version: '4' });
    h = await startHarness({ SEGSERVE_UPSTREAMS: `tiny=${up.target}` });
    c = clients(h.grpcAddress);
  });
  afterAll(async () => {
    c.segmenter.close();
    await h?.close();
    await up?.close();
  });

  it('proxies Segment and names the serving version (response and header)', async () => {
    const r = await segmentVia(c, { model: 'tiny', image: fakeImage() });
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.value).toMatchObject({ model: 'tiny', version: '4', width: 6, height: 4 });
    expect(r.value.mask).toEqual(fakeMaskPng(6, 4, 2));
    expect(r.headers.get('segserve-model-version')).toEqual(['4']);
  });

  it('an empty model name means the default model', async () => {
    const r = await segmentVia(c, { model: '', image: fakeImage() });
    expect(r.ok && r.value.model).toBe('tiny');
  });

  it.each([
    ['TOO_LARGE', grpc.status.RESOURCE_EXHAUSTED, undefined],
    ['OVERLOADED', grpc.status.RESOURCE_EXHAUSTED, '1'],
    ['INVALID_INPUT', grpc.status.INVALID_ARGUMENT, undefined],
    ['DEADLINE', grpc.status.DEADLINE_EXCEEDED, undefined],
  ])('upstream %s keeps its code (and retry-after) across the hop', async (code, status, retryAfter) => {
    const r = await segmentVia(c, { model: 'tiny', image: fakeImage(`fail:${code}`) });
    expect(r).toMatchObject({ ok: false, code: status, segserveCode: code, retryAfter });
  });

  it.each([
    ['an unknown model', { model: 'nope', image: fakeImage() }, grpc.status.NOT_FOUND, 'MODEL_NOT_FOUND'],
    ['an empty image', { model: 'tiny', image: Buffer.alloc(0) }, grpc.status.INVALID_ARGUMENT, 'INVALID_INPUT'],
    ['a PDF', { model: 'tiny', image: Buffer.from('%PDF-1.5\n') }, grpc.status.INVALID_ARGUMENT, 'UNSUPPORTED_MEDIA_TYPE'],
  ])('rejects %s', async (_n, req, status, code) => {
    expect(await segmentVia(c, req)).toMatchObject({ ok: false, code: status, segserveCode: code });
  });

  it('a message over the size limit is RESOURCE_EXHAUSTED and the server stays up', async () => {
    const r = await segmentVia(c, { model: 'tiny', image: Buffer.concat([fakeImage(), Buffer.alloc(33 * 1024 * 1024)]) });
    expect(r).toMatchObject({ ok: false, code: grpc.status.RESOURCE_EXHAUSTED });
    expect((await segmentVia(c, { model: 'tiny', image: fakeImage() })).ok).toBe(true);
  });

  it('the caller’s deadline bounds the upstream call', async () => {
    const r = await call<SegmentResponse__Output>((m, cb) => c.segmenter.Segment({ model: 'tiny', image: fakeImage('sleep:3000') }, m, { deadline: Date.now() + 300 }, cb));
    expect(r).toMatchObject({ ok: false, code: grpc.status.DEADLINE_EXCEEDED });
  });

  it('proxies OIP by model_name', async () => {
    const meta = await call<{ name: string; versions: string[] }>((m, cb) => c.oip.ModelMetadata({ name: 'tiny' }, m, cb));
    expect(meta).toMatchObject({ ok: true, value: { name: 'tiny', versions: ['4'] } });
    const infer = await call<{ model_version: string }>((m, cb) => c.oip.ModelInfer({ model_name: 'tiny', inputs: [] }, m, cb));
    expect(infer).toMatchObject({ ok: true, value: { model_version: '4' } });
    const ready = await call<{ ready: boolean }>((m, cb) => c.oip.ModelReady({ name: 'tiny' }, m, cb));
    expect(ready).toMatchObject({ ok: true, value: { ready: true } });
    const unknown = await call((m, cb) => c.oip.ModelInfer({ model_name: 'nope' }, m, cb));
    expect(unknown).toMatchObject({ ok: false, code: grpc.status.NOT_FOUND });
    const live = await call<{ live: boolean }>((m, cb) => c.oip.ServerLive({}, m, cb));
    expect(live).toMatchObject({ ok: true, value: { live: true } });
  });

  it('health: SERVING while an upstream serves; unknown services are NOT_FOUND', async () => {
    expect(await call((m, cb) => c.health.Check({ service: '' }, m, cb))).toMatchObject({ ok: true, value: { status: 'SERVING' } });
    expect(await call((m, cb) => c.health.Check({ service: 'segserve.v1.Segmenter' }, m, cb))).toMatchObject({ ok: true, value: { status: 'SERVING' } });
    expect(await call((m, cb) => c.health.Check({ service: 'nope' }, m, cb))).toMatchObject({ ok: false, code: grpc.status.NOT_FOUND });
  });

  it('serves reflection', async () => {
    const require = createRequire(import.meta.url);
    const protoFile = path.join(path.dirname(require.resolve('@grpc/reflection/package.json')), 'build', 'proto', 'grpc', 'reflection', 'v1', 'reflection.proto');
    type ListResponse = { list_services_response?: { service: Array<{ name: string }> } };
    type ReflectionClient = grpc.Client & { ServerReflectionInfo(): grpc.ClientDuplexStream<object, ListResponse> };
    const def = grpc.loadPackageDefinition(loadSync(protoFile, { keepCase: true })) as unknown as {
      grpc: { reflection: { v1: { ServerReflection: new (a: string, c: grpc.ChannelCredentials) => ReflectionClient } } };
    };
    const client = new def.grpc.reflection.v1.ServerReflection(h.grpcAddress, grpc.credentials.createInsecure());
    const stream = client.ServerReflectionInfo();
    const names = await new Promise<string[]>((resolve, reject) => {
      stream.on('data', (m: ListResponse) => {
        resolve((m.list_services_response?.service ?? []).map((s) => s.name));
        stream.end();
      });
      stream.on('error', reject);
      stream.write({ list_services: '' });
    });
    client.close();
    expect(names).toEqual(expect.arrayContaining(['segserve.v1.Segmenter', 'inference.GRPCInferenceService', 'grpc.health.v1.Health']));
  });

  it('GET /v1/models/{model} probes class names when no request has named them yet', async () => {
    const fresh = await startFakeUpstream({ version: '9', classes: ['bg', 'sign', 'window'] });
    const g = await startHarness({ SEGSERVE_UPSTREAMS: `other=${fresh.target}` });
    try {
      const body = (await (await fetch(`${g.base}/v1/models/other`)).json()) as { classes: string[]; versions: string[] };
      expect(body).toMatchObject({ classes: ['bg', 'sign', 'window'], versions: ['9'] });
      expect(fresh.calls).toHaveLength(1);
    } finally {
      await g.close();
      await fresh.close();
    }
  });
});

describe('gRPC API keys', () => {
  let up: FakeUpstream;
  let h: Harness;
  let c: ReturnType<typeof clients>;
  beforeAll(async () => {
    up = await startFakeUpstream();
    h = await startHarness({ SEGSERVE_UPSTREAMS: `tiny=${up.target}`, SEGSERVE_API_KEYS: KEY });
    c = clients(h.grpcAddress);
  });
  afterAll(async () => {
    await h?.close();
    await up?.close();
  });

  const md = (value?: string): grpc.Metadata => {
    const m = new grpc.Metadata();
    if (value !== undefined) m.set('authorization', value);
    return m;
  };

  it.each([
    ['no key', undefined, false],
    ['a wrong key', 'Bearer nope-0123456789abcdefg', false],
    ['the key', `Bearer ${KEY}`, true],
  ])('Segment with %s', async (_n, value, ok) => {
    const r = await segmentVia(c, { model: 'tiny', image: fakeImage() }, md(value));
    if (ok) expect(r.ok).toBe(true);
    else expect(r).toMatchObject({ ok: false, code: grpc.status.UNAUTHENTICATED, segserveCode: 'UNAUTHENTICATED' });
  });

  it('OIP needs the key too; health does not', async () => {
    expect(await call((m, cb) => c.oip.ModelMetadata({ name: 'tiny' }, m, cb))).toMatchObject({ ok: false, code: grpc.status.UNAUTHENTICATED });
    expect(await call((m, cb) => c.health.Check({ service: '' }, m, cb))).toMatchObject({ ok: true });
  });
});

/** A rollout source the test changes while the gateway runs. */
class MutableSource implements RolloutSource {
  #snapshot: RolloutSnapshot = new Map();
  readonly #listeners = new Set<(s: RolloutSnapshot) => void>();
  set(states: RolloutState[]): void {
    this.#snapshot = new Map(states.map((s) => [s.model, s]));
    for (const l of this.#listeners) l(this.#snapshot);
  }
  snapshot(): RolloutSnapshot {
    return this.#snapshot;
  }
  subscribe(l: (s: RolloutSnapshot) => void): () => void {
    this.#listeners.add(l);
    return () => this.#listeners.delete(l);
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

describe('routing', () => {
  let v1: FakeUpstream;
  let v2: FakeUpstream;
  beforeAll(async () => {
    v1 = await startFakeUpstream({ version: '1' });
    v2 = await startFakeUpstream({ version: '2' });
  });
  afterAll(async () => {
    await v1?.close();
    await v2?.close();
  });

  const state = (stableTarget: string, canary: { target: string; weight: number } | null): RolloutState => ({
    model: 'tiny',
    stable: { version: '1', sha256: '', target: stableTarget },
    canary: canary ? { version: '2', sha256: '', ...canary } : null,
    phase: canary ? 'Canary' : 'Idle',
    updated_at: '',
    revision: 1,
  });

  it('splits by the canary weight, with the random source injected', async () => {
    const draws = [0.05, 0.5, 0.19, 0.2, 0.99, 0.0];
    let i = 0;
    const source = new MutableSource();
    source.set([state(v1.target, { target: v2.target, weight: 20 })]);
    const h = await startHarness({ SEGSERVE_UPSTREAMS: 'unused=ipv4:127.0.0.1:9' }, {}, { source, random: () => draws[i++ % draws.length] ?? 0 });
    try {
      const versions: string[] = [];
      for (let n = 0; n < draws.length; n++) {
        const res = await fetch(`${h.base}/v1/models/tiny/segment`, { method: 'POST', body: form({ image: fakeImage() }) });
        versions.push(res.headers.get('segserve-model-version') ?? '?');
      }
      expect(versions).toEqual(['2', '1', '2', '1', '1', '2']);
      const metrics = await (await fetch(`${h.base}/metrics`)).text();
      expect(metrics).toMatch(/^segserve_gateway_route_weight\{model="tiny",track="canary"\} 20$/m);
      expect(metrics).toMatch(/^segserve_gateway_route_weight\{model="tiny",track="stable"\} 80$/m);
    } finally {
      await h.close();
    }
  });

  it('a state change re-routes without a restart', async () => {
    const source = new MutableSource();
    source.set([state(v1.target, null)]);
    const h = await startHarness({ SEGSERVE_UPSTREAMS: 'unused=ipv4:127.0.0.1:9' }, {}, { source });
    const version = async (): Promise<string | null> => (await fetch(`${h.base}/v1/models/tiny/segment`, { method: 'POST', body: form({ image: fakeImage() }) })).headers.get('segserve-model-version');
    try {
      expect(await version()).toBe('1');
      source.set([{ ...state(v2.target, null), stable: { version: '2', sha256: '', target: v2.target } }]);
      expect(await version()).toBe('2');
      source.set([]);
      expect((await fetch(`${h.base}/v1/models/tiny/segment`, { method: 'POST', body: form({ image: fakeImage() }) })).status).toBe(404);
    } finally {
      await h.close();
    }
  });
});
