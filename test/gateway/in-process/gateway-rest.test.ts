// The REST edge against an in-process fake upstream: formats, the error table, limits, auth.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request as httpRequest } from 'node:http';
import { inflateSync } from 'node:zlib';
import { fakeImage, fakeMaskPng, startFakeUpstream, type FakeUpstream } from './fake-upstream.js';
import { form, startHarness, type Harness } from './harness.js';

const KEY = 'test-key-0123456789abcdef';
let up: FakeUpstream;
let h: Harness;

beforeAll(async () => {
  up = await startFakeUpstream({ version: '7' });
  h = await startHarness({ SEGSERVE_UPSTREAMS: `tiny=${up.target}` }, { maxUploadBytes: 64 * 1024 });
});
afterAll(async () => {
  await h?.close();
  await up?.close();
});

const segment = (body: FormData | string | Buffer, init: { query?: string; headers?: Record<string, string>; model?: string } = {}): Promise<Response> =>
  fetch(`${h.base}/v1/models/${init.model ?? 'tiny'}/segment${init.query ?? ''}`, { method: 'POST', body, headers: init.headers ?? {} });

async function errorOf(res: Response): Promise<{ status: number; code: string; message: string }> {
  const body = (await res.json()) as { error: { code: string; message: string } };
  return { status: res.status, code: body.error.code, message: body.error.message };
}

describe('segment', () => {
  it('answers the class-index PNG as the upstream sent it, naming the version', async () => {
    const res = await segment(form({ image: fakeImage() }));
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('image/png');
    expect(res.headers.get('segserve-model-version')).toBe('7');
    expect(Buffer.from(await res.arrayBuffer())).toEqual(fakeMaskPng(6, 4, 2));
    expect(up.calls.at(-1)).toMatchObject({ model: 'tiny', version: '', format: 'PNG' });
  });

  it('answers JSON with class stats, the mask in base64, version and timings', async () => {
    const res = await segment(form({ image: fakeImage() }), { headers: { accept: 'application/json' } });
    expect(res.status).toBe(200);
    const body = (await res.json()) as Record<string, unknown>;
    expect(body).toMatchObject({
      model: 'tiny',
      version: '7',
      track: 'stable',
      width: 6,
      height: 4,
      mask_format: 'png',
      classes: [
        { index: 0, name: 'background', pixels: 12, fraction: 0.5, color: '#000000' },
        { index: 1, name: 'advertising', pixels: 12, fraction: 0.5, color: '#e6194b' },
      ],
      timings: { inference: { total_ms: 1.5, infer_ms: 1 } },
    });
    expect(Buffer.from(body['mask'] as string, 'base64')).toEqual(fakeMaskPng(6, 4, 2));
  });

  it('?format=color answers the upstream PNG as a palette PNG (same scanlines, class colours)', async () => {
    const res = await segment(form({ image: fakeImage() }), { query: '?format=color' });
    expect(res.status).toBe(200);
    const png = Buffer.from(await res.arrayBuffer());
    expect(png.readUInt8(25)).toBe(3); // IHDR colour type: palette
    expect(up.calls.at(-1)?.format).toBe('PNG');
    const idatAt = png.indexOf('IDAT');
    const scan = inflateSync(png.subarray(idatAt + 4, idatAt + 4 + png.readUInt32BE(idatAt - 4)));
    expect([...scan.subarray(0, 7)]).toEqual([0, 0, 1, 0, 1, 0, 1]);
  });

  it('POST /segmentator-api uses the default model', async () => {
    const res = await fetch(`${h.base}/segmentator-api`, { method: 'POST', body: form({ image: fakeImage() }) });
    expect(res.status).toBe(200);
    expect(up.calls.at(-1)?.model).toBe('tiny');
  });

  it('forwards an explicit version and 404s one that is not served', async () => {
    expect((await segment(form({ image: fakeImage() }), { query: '?version=7' })).status).toBe(200);
    expect(await errorOf(await segment(form({ image: fakeImage() }), { query: '?version=8' }))).toMatchObject({ status: 404, code: 'MODEL_NOT_FOUND' });
  });
});

describe('upstream errors map through the one table', () => {
  it.each([
    ['TOO_LARGE', 413],
    ['INVALID_INPUT', 400],
    ['UNSUPPORTED_MEDIA_TYPE', 415],
    ['MODEL_NOT_FOUND', 404],
    ['OVERLOADED', 503],
    ['DEADLINE', 504],
  ])('%s → %d', async (code, status) => {
    const res = await segment(form({ image: fakeImage(`fail:${code}`) }));
    expect(await errorOf(res)).toEqual({ status, code, message: `fake failure ${code}` });
    if (status === 503) expect(res.headers.get('retry-after')).toBe('1');
  });

  it('INTERNAL keeps its details out of the answer', async () => {
    expect(await errorOf(await segment(form({ image: fakeImage('fail:INTERNAL') })))).toEqual({ status: 500, code: 'INTERNAL', message: 'internal error' });
  });

  it('a foreign UNAVAILABLE is retried, then 503 without internal addresses', async () => {
    const before = up.calls.length;
    const res = await segment(form({ image: fakeImage('raw-status:14') }));
    const e = await errorOf(res);
    expect(e).toMatchObject({ status: 503, code: 'UNAVAILABLE' });
    expect(e.message).not.toMatch(/10\.1\.2\.3/);
    expect(res.headers.get('retry-after')).toBe('1');
    expect(up.calls.length - before).toBe(4); // maxAttempts
    const metrics = await (await fetch(`${h.base}/metrics`)).text();
    expect(metrics).toMatch(/^segserve_gateway_upstream_retries_total [1-9]\d*$/m);
  });

  it('the deadline header shortens the deadline: 504', async () => {
    const res = await segment(form({ image: fakeImage('sleep:3000') }), { headers: { 'x-segserve-timeout-ms': '150' } });
    expect(await errorOf(res)).toMatchObject({ status: 504, code: 'DEADLINE' });
  });

  it('a malformed deadline header is 400', async () => {
    expect(await errorOf(await segment(form({ image: fakeImage() }), { headers: { 'x-segserve-timeout-ms': 'soon' } }))).toMatchObject({ status: 400, code: 'INVALID_INPUT' });
  });
});

describe('bad input never reaches the upstream', () => {
  const cases: Array<[string, () => Promise<Response>, number, string]> = [
    ['no image field', () => segment(form({ picture: fakeImage() })), 400, 'INVALID_INPUT'],
    ['only fields', () => segment(form({}, { image: 'not a file' })), 400, 'INVALID_INPUT'],
    ['an empty file', () => segment(form({ image: Buffer.alloc(0) })), 400, 'INVALID_INPUT'],
    ['a text file', () => segment(form({ image: 'hello, I am text\n' })), 415, 'UNSUPPORTED_MEDIA_TYPE'],
    ['a PDF', () => segment(form({ image: '%PDF-1.4\n%\u00e2\u00e3' })), 415, 'UNSUPPORTED_MEDIA_TYPE'],
    ['a GIF', () => segment(form({ image: Buffer.from('GIF89a\x01\x00\x01\x00', 'latin1') })), 415, 'UNSUPPORTED_MEDIA_TYPE'],
    ['not multipart', () => segment(fakeImage(), { headers: { 'content-type': 'image/jpeg' } }), 415, 'UNSUPPORTED_MEDIA_TYPE'],
    ['JSON', () => segment('{"image":"x"}', { headers: { 'content-type': 'application/json' } }), 415, 'UNSUPPORTED_MEDIA_TYPE'],
    ['a file over the limit', () => segment(form({ image: Buffer.concat([fakeImage(), Buffer.alloc(70 * 1024)]) })), 413, 'TOO_LARGE'],
    ['two files', () => segment(form({ image: fakeImage(), other: fakeImage() })), 413, 'TOO_LARGE'],
    ['many fields', () => segment(form({ image: fakeImage() }, Object.fromEntries(Array.from({ length: 50 }, (_, i) => [`f${i}`, 'x'])))), 413, 'TOO_LARGE'],
    ['an unknown model', () => segment(form({ image: fakeImage() }), { model: 'nope' }), 404, 'MODEL_NOT_FOUND'],
    ['a model name with a path trick', () => segment(form({ image: fakeImage() }), { model: '..%2F..%2Fetc' }), 404, 'MODEL_NOT_FOUND'],
    ['a bad format', () => segment(form({ image: fakeImage() }), { query: '?format=jpeg' }), 400, 'INVALID_INPUT'],
  ];
  it.each(cases)('%s → %d %s', async (_name, send, status, code) => {
    const before = up.calls.length;
    expect(await errorOf(await send())).toMatchObject({ status, code });
    expect(up.calls.length).toBe(before);
  });

  it('thousands of tiny parts: 413, and the gateway stays up', async () => {
    const f = form({}, Object.fromEntries(Array.from({ length: 3000 }, (_, i) => [`p${i}`, ''])));
    f.append('image', new Blob([new Uint8Array(fakeImage())]), 'x.jpg');
    expect(await errorOf(await segment(f))).toMatchObject({ status: 413, code: 'TOO_LARGE' });
    expect((await fetch(`${h.base}/healthz`)).status).toBe(200);
  });

  it.each([
    ['a model name of 300 characters', `/v1/models/${'A'.repeat(300)}/segment`, /longer than 100 characters/],
    ['a malformed percent-encoding in the path', '/v1/models/%E0%A4%A/segment', /not valid/],
  ])('%s: 400 INVALID_INPUT from the table, not the router\'s own body', async (_name, url, message) => {
    const res = await fetch(`${h.base}${url}`, { method: 'POST' });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error: { code: 'INVALID_INPUT', message: expect.stringMatching(message) as unknown } });
  });

  it('a part header line starting with whitespace (the dicer crash): 400, still up', async () => {
    const boundary = 'xyzzy';
    const body = Buffer.from(`--${boundary}\r\n Content-Disposition: form-data; name="image"; filename="a.jpg"\r\n\r\n\xff\xd8\xffdata\r\n--${boundary}--\r\n`, 'latin1');
    const res = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = httpRequest(`${h.base}/v1/models/tiny/segment`, { method: 'POST', headers: { 'content-type': `multipart/form-data; boundary=${boundary}`, 'content-length': body.length } }, (r) => {
        let text = '';
        r.on('data', (c: Buffer) => (text += c.toString()));
        r.on('end', () => resolve({ status: r.statusCode ?? 0, body: text }));
      });
      req.on('error', reject);
      req.end(body);
    });
    expect(res.status).toBe(400);
    expect(JSON.parse(res.body)).toMatchObject({ error: { code: 'INVALID_INPUT' } });
    expect((await fetch(`${h.base}/healthz`)).status).toBe(200);
  });
});

describe('models, health, docs, metrics', () => {
  it('GET /v1/models lists tracks and versions', async () => {
    const body = (await (await fetch(`${h.base}/v1/models`)).json()) as { models: unknown[] };
    expect(body.models).toEqual([{ name: 'tiny', phase: 'Idle', stable: { version: '7', weight: 100 }, canary: null }]);
  });

  it('GET /v1/models/{model} adds OIP metadata and the learnt classes', async () => {
    const res = await fetch(`${h.base}/v1/models/tiny`);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ name: 'tiny', versions: ['7'], platform: 'onnxruntime', input_size: { height: 64, width: 96 }, classes: ['background', 'advertising'], stable: { version: '7', weight: 100 } });
    expect((await fetch(`${h.base}/v1/models/nope`)).status).toBe(404);
  });

  it('readiness follows upstream health', async () => {
    expect((await fetch(`${h.base}/readyz`)).status).toBe(200);
    up.setServing(false);
    try {
      await new Promise((r) => setTimeout(r, 1100)); // the report cache
      const res = await fetch(`${h.base}/readyz`);
      expect(res.status).toBe(503);
      expect(await res.json()).toMatchObject({ ready: false, error: { code: 'UNAVAILABLE' } });
    } finally {
      up.setServing(true);
    }
  });

  it('unknown routes are 404 JSON', async () => {
    expect(await errorOf(await fetch(`${h.base}/v2/nothing`))).toMatchObject({ status: 404, code: 'INVALID_INPUT' });
  });

  it('metrics carry the contract names and labels', async () => {
    const text = await (await fetch(`${h.base}/metrics`)).text();
    expect(text).toMatch(/^segserve_gateway_requests_total\{protocol="rest",model="tiny",version="7",code="OK"\} \d+$/m);
    expect(text).toMatch(/^segserve_gateway_requests_total\{protocol="rest",model="",version="",code="MODEL_NOT_FOUND"\} \d+$/m);
    expect(text).toMatch(/^segserve_gateway_request_duration_seconds_bucket\{le="0\.5",protocol="rest",model="tiny",version="7"\} \d+$/m);
    expect(text).toMatch(/^segserve_gateway_route_weight\{model="tiny",track="stable"\} 100$/m);
    expect(text).toMatch(/^segserve_gateway_route_weight\{model="tiny",track="canary"\} 0$/m);
    expect(text).toMatch(/^process_resident_memory_bytes \d+/m);
  });

  it('serves the page with a strict CSP', async () => {
    const res = await fetch(`${h.base}/`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/text\/html/);
    expect(res.headers.get('content-security-policy')).toContain("script-src 'self'");
    expect(await res.text()).toContain('<script src="/app.js"');
    expect((await fetch(`${h.base}/app.js`)).headers.get('content-type')).toMatch(/javascript/);
  });
});

describe('API keys', () => {
  let keyed: Harness;
  beforeAll(async () => {
    keyed = await startHarness({ SEGSERVE_UPSTREAMS: `tiny=${up.target}`, SEGSERVE_API_KEYS: `${KEY},second-key-0123456789` });
  });
  afterAll(() => keyed?.close());

  it.each([
    ['no key', {}, 401],
    ['a wrong key', { authorization: 'Bearer wrong-key-0123456789abcdef' }, 401],
    ['the key without the scheme', { authorization: KEY }, 401],
    ['the first key', { authorization: `Bearer ${KEY}` }, 200],
    ['the second key', { authorization: 'Bearer second-key-0123456789' }, 200],
  ])('segment with %s → %d', async (_name, headers, status) => {
    const res = await fetch(`${keyed.base}/v1/models/tiny/segment`, { method: 'POST', body: form({ image: fakeImage() }), headers });
    expect(res.status).toBe(status);
    if (status === 401) {
      expect(res.headers.get('www-authenticate')).toBe('Bearer');
      expect(await res.json()).toMatchObject({ error: { code: 'UNAUTHENTICATED' } });
    }
  });

  it('model listing needs a key; health, metrics, docs and the page do not', async () => {
    expect((await fetch(`${keyed.base}/v1/models`)).status).toBe(401);
    for (const path of ['/healthz', '/readyz', '/metrics', '/openapi.json', '/', '/app.js']) expect((await fetch(`${keyed.base}${path}`)).status, path).toBe(200);
  });

  it('never logs a key', () => {
    const logs = keyed.logs.join('\n');
    expect(logs).not.toContain(KEY);
    expect(logs).not.toContain('wrong-key-0123456789abcdef');
  });
});
