// The gateway between real processes: masks identical to calling inference directly, over REST
// and gRPC; docs/reliability.md items 1–9 and 15 at the gateway; metrics. Processes: inference (tiny-seg v1),
// a deliberately slow inference (tiny-sigmoid, 30 s per request via SEGSERVE_FAULT_DELAY_MS, one
// slot, no queue) and the gateway.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync, readdirSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { waitFor } from '../helpers/process.js';
import {
  errorBody,
  FIXTURE_MODELS,
  grpcCall,
  ipv4Target,
  metricValue,
  oipClient,
  pngDeclaring,
  postImage,
  segmenterClient,
  segmentGrpc,
  startGatewayProc,
  startInference,
  tinySeg,
  TINY_IMAGES,
  type GatewayProc,
  type InferenceProc,
} from './stack.js';

let inference: InferenceProc;
let slow: InferenceProc;
let gateway: GatewayProc;
let direct: ReturnType<typeof segmenterClient>;
let viaGateway: ReturnType<typeof segmenterClient>;

const images = readdirSync(TINY_IMAGES).sort();
const image = (name: string): Buffer => readFileSync(path.join(TINY_IMAGES, name));
const calls = async (): Promise<number> => metricValue(await (await fetch(`http://127.0.0.1:${inference.metricsPort}/metrics`)).text(), 'segserve_inference_requests_total');

beforeAll(async () => {
  [inference, slow] = await Promise.all([startInference(tinySeg('1')), startInference(path.join(FIXTURE_MODELS, 'tiny-sigmoid', '1'), { SEGSERVE_FAULT_DELAY_MS: '30000', SEGSERVE_MAX_QUEUE: '0' })]);
  gateway = await startGatewayProc({ SEGSERVE_UPSTREAMS: `tiny-seg=${ipv4Target(inference)};tiny-sigmoid=${ipv4Target(slow)}`, SEGSERVE_DEFAULT_MODEL: 'tiny-seg' });
  direct = segmenterClient(inference.address);
  viaGateway = segmenterClient(gateway.address);
});

afterAll(async () => {
  direct?.close();
  viaGateway?.close();
  await gateway?.[Symbol.asyncDispose]();
  await Promise.all([inference?.[Symbol.asyncDispose](), slow?.[Symbol.asyncDispose]()]);
});

describe('same masks as inference itself', () => {
  it.each(images)('%s over REST (PNG and JSON) and gRPC', async (name) => {
    const bytes = image(name);
    const expected = await segmentGrpc(direct, 'tiny-seg', bytes);
    if (!expected.ok) throw new Error(`direct call failed: ${expected.details}`);

    const png = await postImage(gateway.base, 'tiny-seg', bytes, { filename: name });
    expect(png.status).toBe(200);
    expect(png.headers.get('segserve-model-version')).toBe('1');
    expect(Buffer.from(await png.arrayBuffer())).toEqual(expected.value.mask);

    const json = (await (await postImage(gateway.base, 'tiny-seg', bytes, { headers: { accept: 'application/json' } })).json()) as { mask: string; version: string; classes: Array<{ name: string; pixels: number; fraction: number }> };
    expect(Buffer.from(json.mask, 'base64')).toEqual(expected.value.mask);
    expect(json.version).toBe('1');
    expect(json.classes.map((c) => [c.name, c.pixels, c.fraction])).toEqual(expected.value.classes.map((c) => [c.name, Number(c.pixels), c.fraction]));

    const viaGrpc = await segmentGrpc(viaGateway, 'tiny-seg', bytes);
    expect(viaGrpc.ok && viaGrpc.value.mask).toEqual(expected.value.mask);
    expect(viaGrpc.ok && viaGrpc.value.version).toBe('1');
  });

  it('POST /segmentator-api serves the default model', async () => {
    const form = new FormData();
    form.append('image', new Blob([new Uint8Array(image(images[0]!))]), 'x.png');
    const res = await fetch(`${gateway.base}/segmentator-api`, { method: 'POST', body: form });
    expect(res.status).toBe(200);
    expect(res.headers.get('segserve-model')).toBe('tiny-seg');
  });

  it('OIP through the gateway answers like inference', async () => {
    const meta = await grpcCall<{ name: string; versions: string[]; inputs: Array<{ shape: string[] }> }>((md, o, cb) => oipClient(gateway.address).ModelMetadata({ name: 'tiny-seg' }, md, o, cb));
    const directMeta = await grpcCall<unknown>((md, o, cb) => oipClient(inference.address).ModelMetadata({ name: 'tiny-seg' }, md, o, cb));
    expect(meta).toEqual(directMeta);
    const shape = ['1', '3', '64', '96'];
    const raw = Buffer.alloc(3 * 64 * 96 * 4);
    const req = { model_name: 'tiny-seg', inputs: [{ name: 'input', datatype: 'FP32', shape }], raw_input_contents: [raw] };
    const viaGw = await grpcCall<{ model_version: string; raw_output_contents: Buffer[] }>((md, o, cb) => oipClient(gateway.address).ModelInfer(req, md, o, cb));
    const viaDirect = await grpcCall<{ model_version: string; raw_output_contents: Buffer[] }>((md, o, cb) => oipClient(inference.address).ModelInfer(req, md, o, cb));
    expect(viaGw.ok && viaGw.value.model_version).toBe('1');
    expect(viaGw.ok && viaGw.value.raw_output_contents).toEqual(viaDirect.ok && viaDirect.value.raw_output_contents);
    const bad = await grpcCall((md, o, cb) => oipClient(gateway.address).ModelInfer({ ...req, inputs: [{ name: 'input', datatype: 'FP32', shape: ['1', '3', '-64', '96'] }] }, md, o, cb));
    expect(bad).toMatchObject({ ok: false, code: grpc.status.INVALID_ARGUMENT, segserveCode: 'INVALID_INPUT' });
  });

  it('GET /v1/models/{model}: versions, input size, classes, tracks', async () => {
    const res = await fetch(`${gateway.base}/v1/models/tiny-seg`);
    expect(await res.json()).toMatchObject({ name: 'tiny-seg', versions: ['1'], input_size: { height: 64, width: 96 }, classes: ['background', 'advertising'], stable: { version: '1', weight: 100 }, canary: null });
  });
});

describe('docs/reliability.md items 1–9 at the gateway', () => {
  it('1: no image part, or an empty file → 400, nothing forwarded', async () => {
    const before = await calls();
    expect(await errorBody(await postImage(gateway.base, 'tiny-seg', image(images[0]!), { field: 'photo' }))).toMatchObject({ status: 400, code: 'INVALID_INPUT' });
    expect(await errorBody(await postImage(gateway.base, 'tiny-seg', Buffer.alloc(0)))).toMatchObject({ status: 400, code: 'INVALID_INPUT' });
    expect(await calls()).toBe(before);
  });

  it('2: a file over 32 MiB → 413, nothing forwarded', async () => {
    const before = await calls();
    const big = Buffer.concat([image('facade-01.jpg'), Buffer.alloc(33 * 1024 * 1024, 1)]);
    expect(await errorBody(await postImage(gateway.base, 'tiny-seg', big))).toMatchObject({ status: 413, code: 'TOO_LARGE' });
    expect(await calls()).toBe(before);
  });

  it('3: thousands of tiny parts or fields → 413, the gateway stays up', async () => {
    const form = new FormData();
    for (let i = 0; i < 5000; i++) form.append(`f${i}`, 'x');
    form.append('image', new Blob([new Uint8Array(image(images[0]!))]), 'x.png');
    expect(await errorBody(await fetch(`${gateway.base}/v1/models/tiny-seg/segment`, { method: 'POST', body: form }))).toMatchObject({ status: 413, code: 'TOO_LARGE' });
    const files = new FormData();
    for (let i = 0; i < 2000; i++) files.append(`image${i}`, new Blob(['x']), 'x');
    expect((await fetch(`${gateway.base}/v1/models/tiny-seg/segment`, { method: 'POST', body: files })).status).toBe(413);
    expect((await fetch(`${gateway.base}/healthz`)).status).toBe(200);
  });

  it('4: a part header line starting with whitespace → 400, process up', async () => {
    const boundary = 'segserve-boundary';
    const body = Buffer.concat([
      Buffer.from(`--${boundary}\r\n Content-Disposition: form-data; name="image"; filename="a.png"\r\nContent-Type: image/png\r\n\r\n`),
      image(images[0]!),
      Buffer.from(`\r\n--${boundary}--\r\n`),
    ]);
    const status = await new Promise<number>((resolve, reject) => {
      const req = httpRequest(`${gateway.base}/v1/models/tiny-seg/segment`, { method: 'POST', headers: { 'content-type': `multipart/form-data; boundary=${boundary}`, 'content-length': body.length } }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      });
      req.on('error', reject);
      req.end(body);
    });
    expect(status).toBe(400);
    expect(gateway.proc.hasExited()).toBe(false);
    expect((await fetch(`${gateway.base}/healthz`)).status).toBe(200);
  });

  it('5: Content-Type image/png but text or a PDF inside → 415', async () => {
    for (const body of ['just some text, not a picture\n', '%PDF-1.7\n1 0 obj << >> endobj\n']) {
      const form = new FormData();
      form.append('image', new Blob([body], { type: 'image/png' }), 'fake.png');
      expect(await errorBody(await fetch(`${gateway.base}/v1/models/tiny-seg/segment`, { method: 'POST', body: form }))).toMatchObject({ status: 415, code: 'UNSUPPORTED_MEDIA_TYPE' });
    }
  });

  it('6: a small PNG declaring 20000×20000 → 413 from inference, no OOM', async () => {
    expect(await errorBody(await postImage(gateway.base, 'tiny-seg', pngDeclaring(20000, 20000)))).toMatchObject({ status: 413, code: 'TOO_LARGE' });
    expect(inference.proc.hasExited()).toBe(false);
  });

  it('7: a truncated JPEG → 400', async () => {
    const jpeg = image('facade-01.jpg');
    expect(await errorBody(await postImage(gateway.base, 'tiny-seg', jpeg.subarray(0, Math.floor(jpeg.length / 2))))).toMatchObject({ status: 400, code: 'INVALID_INPUT' });
  });

  it('8: SVG, a 6-channel TIFF, an animated GIF → 415', async () => {
    const svg = '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10"/></svg>';
    // Little-endian TIFF: header, one IFD with SamplesPerPixel = 6.
    const tiff = Buffer.from([0x49, 0x49, 0x2a, 0x00, 0x08, 0x00, 0x00, 0x00, 0x01, 0x00, 0x15, 0x01, 0x03, 0x00, 0x01, 0x00, 0x00, 0x00, 0x06, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00]);
    const gif = Buffer.concat([Buffer.from('GIF89a\x01\x00\x01\x00\x80\x00\x00', 'latin1'), Buffer.alloc(6), Buffer.from('!\xff\x0bNETSCAPE2.0\x03\x01\x00\x00\x00;', 'latin1')]);
    for (const body of [svg, tiff, gif]) expect(await errorBody(await postImage(gateway.base, 'tiny-seg', body))).toMatchObject({ status: 415, code: 'UNSUPPORTED_MEDIA_TYPE' });
  });

  it('9: ten pixel bombs at once → all rejected, nothing restarts', async () => {
    const bombs = await Promise.all(Array.from({ length: 10 }, () => postImage(gateway.base, 'tiny-seg', pngDeclaring(30000, 30000))));
    for (const res of bombs) expect(await errorBody(res)).toMatchObject({ status: 413, code: 'TOO_LARGE' });
    expect(inference.proc.hasExited()).toBe(false);
    expect(gateway.proc.hasExited()).toBe(false);
    expect((await postImage(gateway.base, 'tiny-seg', image(images[0]!))).status).toBe(200);
  });

  it('12: an unknown model → 404', async () => {
    expect(await errorBody(await postImage(gateway.base, 'nope', image(images[0]!)))).toMatchObject({ status: 404, code: 'MODEL_NOT_FOUND' });
    expect(await errorBody(await postImage(gateway.base, 'tiny-seg', image(images[0]!), { query: '?version=99' }))).toMatchObject({ status: 404, code: 'MODEL_NOT_FOUND' });
  });
});

/** Waits until the slow pod holds `n` requests (well within its 30 s per request). */
async function slowInFlight(n: number): Promise<void> {
  await waitFor(
    async () => {
      const text = await (await fetch(`http://127.0.0.1:${slow.metricsPort}/metrics`)).text();
      return new RegExp(`^segserve_inference_in_flight ${n}$`, 'm').test(text);
    },
    { what: `the slow pod to hold ${n} request(s)`, timeoutMs: 20_000 },
  );
}

describe('deadlines and cancellation', () => {
  it('15: the deadline passes while the pod is busy → 504, and the pod frees its slot', async () => {
    const started = Date.now();
    const res = await postImage(gateway.base, 'tiny-sigmoid', image(images[0]!), { headers: { 'x-segserve-timeout-ms': '500' } });
    expect(await errorBody(res)).toMatchObject({ status: 504, code: 'DEADLINE' });
    expect(Date.now() - started).toBeLessThan(15_000); // long before the 30 s the pod would take
    await slowInFlight(0);
  });

  it('16: a REST client that hangs up cancels the upstream call; the pod frees its slot', async () => {
    const abort = new AbortController();
    const pending = postImage(gateway.base, 'tiny-sigmoid', image(images[0]!), {}, abort.signal).catch((err: unknown) => err);
    await slowInFlight(1);
    abort.abort();
    expect(await pending).toBeInstanceOf(Error);
    await slowInFlight(0);
  });

  it('a gRPC caller’s own deadline gives DEADLINE_EXCEEDED', async () => {
    const r = await grpcCall((md, _o, cb) => viaGateway.Segment({ model: 'tiny-sigmoid', image: image(images[0]!) }, md, { deadline: Date.now() + 500 }, cb));
    expect(r).toMatchObject({ ok: false, code: grpc.status.DEADLINE_EXCEEDED });
    await slowInFlight(0);
  });

  it('13: beyond the pod\'s queue bound → a fast 503 OVERLOADED with Retry-After', async () => {
    const hold = new AbortController();
    const holding = postImage(gateway.base, 'tiny-sigmoid', image(images[0]!), {}, hold.signal).catch((err: unknown) => err);
    await slowInFlight(1);
    const res = await postImage(gateway.base, 'tiny-sigmoid', image(images[0]!));
    expect(await errorBody(res)).toMatchObject({ status: 503, code: 'OVERLOADED' });
    expect(res.headers.get('retry-after')).toBe('1');
    hold.abort();
    await holding;
    await slowInFlight(0);
  });

  it('10: a gRPC message over 32 MiB → RESOURCE_EXHAUSTED, the gateway stays up', async () => {
    const r = await segmentGrpc(viaGateway, 'tiny-seg', Buffer.concat([image('facade-01.jpg'), Buffer.alloc(33 * 1024 * 1024)]));
    expect(r).toMatchObject({ ok: false, code: grpc.status.RESOURCE_EXHAUSTED });
    expect((await segmentGrpc(viaGateway, 'tiny-seg', image(images[0]!))).ok).toBe(true);
  });
});

describe('metrics', () => {
  it('counts requests by protocol, model, version and code', async () => {
    const text = await (await fetch(`${gateway.base}/metrics`)).text();
    expect(metricValue(text, 'segserve_gateway_requests_total', { protocol: 'rest', model: 'tiny-seg', version: '1', code: 'OK' })).toBeGreaterThan(0);
    expect(metricValue(text, 'segserve_gateway_requests_total', { protocol: 'grpc', model: 'tiny-seg', version: '1', code: 'OK' })).toBeGreaterThan(0);
    expect(metricValue(text, 'segserve_gateway_requests_total', { protocol: 'rest', code: 'TOO_LARGE' })).toBeGreaterThanOrEqual(11);
    expect(metricValue(text, 'segserve_gateway_requests_total', { protocol: 'rest', model: 'tiny-sigmoid', code: 'DEADLINE' })).toBe(1);
    expect(metricValue(text, 'segserve_gateway_route_weight', { model: 'tiny-seg', track: 'stable' })).toBe(100);
    expect(text).toContain('segserve_gateway_request_duration_seconds_bucket{');
    expect(text).toContain('segserve_gateway_upstream_retries_total');
  });
});
