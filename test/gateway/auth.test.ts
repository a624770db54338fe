// docs/reliability.md item 36: with API keys configured, no key or a wrong key is 401 / UNAUTHENTICATED on
// REST and gRPC; health, metrics and the page stay open; keys never appear in the logs.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { errorBody, grpcCall, ipv4Target, oipClient, postImage, segmenterClient, segmentGrpc, startGatewayProc, startInference, tinySeg, TINY_IMAGES, type GatewayProc, type InferenceProc } from './stack.js';

const KEYS = ['first-key-4f0c2a7e9b13d856', 'second-key-9d2e71c04a5fb638'];
const WRONG = 'first-key-4f0c2a7e9b13d857';
const image = readFileSync(path.join(TINY_IMAGES, 'facade-00.png'));
let inference: InferenceProc;
let gateway: GatewayProc;

beforeAll(async () => {
  inference = await startInference(tinySeg('1'));
  gateway = await startGatewayProc({ SEGSERVE_UPSTREAMS: `tiny-seg=${ipv4Target(inference)}`, SEGSERVE_API_KEYS: KEYS.join(','), SEGSERVE_LOG_LEVEL: 'debug' });
});

afterAll(async () => {
  await gateway?.[Symbol.asyncDispose]();
  await inference?.[Symbol.asyncDispose]();
});

const bearer = (key: string): Record<string, string> => ({ authorization: `Bearer ${key}` });
const md = (value?: string): grpc.Metadata => {
  const m = new grpc.Metadata();
  if (value !== undefined) m.set('authorization', value);
  return m;
};

describe('API keys', () => {
  it.each([
    ['no key', {}, 401],
    ['a wrong key', bearer(WRONG), 401],
    ['a key without "Bearer"', { authorization: KEYS[0]! }, 401],
    ['a key as a query string', {}, 401],
    ['the first key', bearer(KEYS[0]!), 200],
    ['the second key', bearer(KEYS[1]!), 200],
  ])('REST segment with %s → %d', async (name, headers, status) => {
    const res = await postImage(gateway.base, 'tiny-seg', image, { headers, query: name.includes('query') ? `?key=${KEYS[0]}` : '' });
    if (status === 401) expect(await errorBody(res)).toMatchObject({ status: 401, code: 'UNAUTHENTICATED' });
    else expect(res.status).toBe(200);
  });

  it('REST model listing and description need a key', async () => {
    expect((await fetch(`${gateway.base}/v1/models`)).status).toBe(401);
    expect((await fetch(`${gateway.base}/v1/models/tiny-seg`, { headers: bearer(WRONG) })).status).toBe(401);
    expect((await fetch(`${gateway.base}/v1/models`, { headers: bearer(KEYS[1]!) })).status).toBe(200);
  });

  it('health, readiness, metrics, docs and the page stay open', async () => {
    for (const p of ['/healthz', '/readyz', '/metrics', '/openapi.json', '/', '/app.js', '/style.css']) expect((await fetch(`${gateway.base}${p}`)).status, p).toBe(200);
  });

  it.each([
    ['no key', undefined, false],
    ['a wrong key', `Bearer ${WRONG}`, false],
    ['the second key', `Bearer ${KEYS[1]}`, true],
  ])('gRPC Segment with %s', async (_name, value, ok) => {
    const client = segmenterClient(gateway.address);
    try {
      const r = await segmentGrpc(client, 'tiny-seg', image, md(value));
      if (ok) expect(r.ok).toBe(true);
      else expect(r).toMatchObject({ ok: false, code: grpc.status.UNAUTHENTICATED, segserveCode: 'UNAUTHENTICATED' });
    } finally {
      client.close();
    }
  });

  it('gRPC OIP needs a key as well', async () => {
    const client = oipClient(gateway.address);
    try {
      expect(await grpcCall((m, o, cb) => client.ModelMetadata({ name: 'tiny-seg' }, m, o, cb), md())).toMatchObject({ ok: false, code: grpc.status.UNAUTHENTICATED });
      expect(await grpcCall((m, o, cb) => client.ModelMetadata({ name: 'tiny-seg' }, m, o, cb), md(`Bearer ${KEYS[0]}`))).toMatchObject({ ok: true });
    } finally {
      client.close();
    }
  });

  it('keys never reach the logs (debug level, after good and bad attempts)', () => {
    const logs = gateway.proc.output();
    expect(logs).toContain('"api_keys":true');
    for (const k of [...KEYS, WRONG]) expect(logs).not.toContain(k);
    expect(logs).not.toMatch(/first-key|second-key/);
  });
});
