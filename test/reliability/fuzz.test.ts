// Fuzz pass (issue 8) over the REST upload path of the gateway and over OIP ModelInfer (direct
// and through the gateway): random and mutated inputs from a seeded generator, a bounded number
// of cases. Every answer must be OK or a code of the error table (docs/architecture.md#errors) carried with the table's status; a
// well-formed ModelInfer with bad contents is never INTERNAL (docs/reliability.md item 11); no process
// crashes or restarts, and a good request still works afterwards.
// FUZZ_SEED=<n> replays another seed (the seed is printed).
import * as grpc from '@grpc/grpc-js';
import http from 'node:http';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { loadProtos } from '@segserve/proto';
import { Census, TINY_IMAGES, classifyGrpc, classifyRest, countCodes, ipv4Target, startGateway, startInference, type Proc } from './harness.js';

const SEED = Number(process.env['FUZZ_SEED'] ?? 20261127);
const REST_CASES = 300;
const OIP_CASES = 300;
const RAW_CASES = 60;

/** mulberry32: small, fast, deterministic. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

class Gen {
  readonly #r: () => number;
  constructor(seed: number) {
    this.#r = prng(seed);
  }
  float(): number {
    return this.#r();
  }
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.#r() * (hi - lo + 1));
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(0, xs.length - 1)]!;
  }
  chance(p: number): boolean {
    return this.#r() < p;
  }
  bytes(n: number): Buffer {
    const b = Buffer.alloc(n);
    for (let i = 0; i < n; i++) b[i] = this.int(0, 255);
    return b;
  }
  /** 1–8 byte-level mutations: flips, overwrites, truncation, duplication, insertion, deletion. */
  mutate(input: Buffer): Buffer {
    let b = Buffer.from(input);
    for (let k = this.int(1, 8); k > 0; k--) {
      const at = b.length ? this.int(0, b.length - 1) : 0;
      switch (this.int(0, 5)) {
        case 0:
          if (b.length) b[at] = b[at]! ^ (1 << this.int(0, 7));
          break;
        case 1:
          if (b.length) b[at] = this.int(0, 255);
          break;
        case 2:
          b = b.subarray(0, at);
          break;
        case 3:
          b = Buffer.concat([b.subarray(0, at), b.subarray(at, at + this.int(1, 64)), b.subarray(at)]);
          break;
        case 4:
          b = Buffer.concat([b.subarray(0, at), this.bytes(this.int(1, 32)), b.subarray(at)]);
          break;
        default:
          b = Buffer.concat([b.subarray(0, at), b.subarray(at + this.int(1, 64))]);
      }
    }
    return b;
  }
}

const images = ['facade-00.png', 'facade-01.jpg', 'facade-02.png'].map((f) => readFileSync(path.join(TINY_IMAGES, f)));

let inference: Proc;
let gateway: Proc;
let census: Census;

beforeAll(async () => {
  inference = await startInference('inference', { SEGSERVE_MAX_QUEUE: '64' });
  gateway = await startGateway({ SEGSERVE_UPSTREAMS: `tiny-seg=${ipv4Target(inference)}` });
  census = new Census([inference, gateway]);
  console.log(`fuzz seed ${SEED} (replay with FUZZ_SEED=${SEED})`);
});

afterAll(async () => {
  await gateway?.[Symbol.asyncDispose]();
  await inference?.[Symbol.asyncDispose]();
});

interface RestCase {
  readonly what: string;
  readonly path: string;
  readonly headers: Record<string, string>;
  readonly body: Buffer;
}

function multipart(parts: { name: string; filename?: string; type?: string; data: Buffer }[], boundary: string): Buffer {
  const chunks: Buffer[] = [];
  for (const p of parts) {
    const disp = `form-data; name="${p.name}"${p.filename === undefined ? '' : `; filename="${p.filename}"`}`;
    chunks.push(Buffer.from(`--${boundary}\r\nContent-Disposition: ${disp}\r\n${p.type ? `Content-Type: ${p.type}\r\n` : ''}\r\n`), p.data, Buffer.from('\r\n'));
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return Buffer.concat(chunks);
}

function restCase(g: Gen): RestCase {
  const boundary = `fz${g.int(0, 1e9)}`;
  const image = g.pick(images);
  const types = ['image/png', 'image/jpeg', 'application/octet-stream', 'text/plain', 'image/svg+xml', ''];
  // Names over 100 characters are refused by Fastify's router before any route runs; the
  // gateway's frameworkErrors handler answers them with the table (found by this fuzzer).
  const model = g.chance(0.85) ? 'tiny-seg' : g.pick(['', 'x', '..%2F..%2Fetc', 'tiny-seg%00', 'a'.repeat(64), 'A'.repeat(100), 'A'.repeat(300), 'tiny_seg', '%E2%80%AE', '%E0%A4%A']);
  const route = g.chance(0.1) ? '/segmentator-api' : `/v1/models/${model}/segment${g.pick(['', '', '?format=color', '?format=%ZZ', `?${'a=1&'.repeat(50)}`])}`;
  const headers: Record<string, string> = { 'content-type': `multipart/form-data; boundary=${boundary}` };
  if (g.chance(0.2)) headers['accept'] = 'application/json';
  const kind = g.int(0, 6);
  let body: Buffer;
  let what: string;
  switch (kind) {
    case 0:
      what = 'random bytes as the image';
      body = multipart([{ name: 'image', filename: 'x.bin', type: g.pick(types), data: g.bytes(g.int(0, 4096)) }], boundary);
      break;
    case 1:
    case 2:
      what = 'mutated image';
      body = multipart([{ name: 'image', filename: 'x.png', type: g.pick(types), data: g.mutate(image) }], boundary);
      break;
    case 3:
      what = 'mutated multipart envelope';
      body = g.mutate(multipart([{ name: 'image', filename: 'x.png', type: 'image/png', data: image }], boundary));
      break;
    case 4:
      what = 'odd parts (extra fields, other names, duplicates, no filename)';
      body = multipart(
        Array.from({ length: g.int(0, 6) }, () => ({ name: g.pick(['image', 'image', 'file', 'img', '', 'x'.repeat(200)]), filename: g.chance(0.5) ? 'a.png' : undefined, type: g.pick(types), data: g.chance(0.5) ? image : g.bytes(g.int(0, 200)) })),
        boundary,
      );
      break;
    case 5:
      what = 'wrong or missing content type';
      headers['content-type'] = g.pick(['', 'text/plain', 'application/json', 'multipart/form-data', `multipart/form-data; boundary=other${boundary}`, 'multipart/mixed; boundary=' + boundary, `multipart/form-data; boundary="${'b'.repeat(100)}"`]);
      body = multipart([{ name: 'image', filename: 'x.png', type: 'image/png', data: image }], boundary);
      break;
    default:
      what = 'a valid upload';
      body = multipart([{ name: 'image', filename: 'x.png', type: 'image/png', data: image }], boundary);
  }
  if (headers['content-type'] === '') delete headers['content-type'];
  return { what, path: route, headers, body };
}

function post(port: number, c: RestCase): Promise<{ status: number; body: string } | { error: string }> {
  return new Promise((resolve) => {
    const req = http.request({ host: '127.0.0.1', port, path: c.path, method: 'POST', headers: { ...c.headers, 'content-length': c.body.length }, timeout: 30_000 }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (d: Buffer) => chunks.push(d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', (err) => resolve({ error: err.message }));
    });
    req.on('timeout', () => req.destroy(new Error('no answer within 30 s')));
    req.on('error', (err) => resolve({ error: err.message }));
    req.end(c.body);
  });
}

const SHAPE = ['1', '3', '64', '96'];
const ELEMENTS = 3 * 64 * 96;

function oipRequest(g: Gen): { what: string; req: Record<string, unknown> } {
  const good = (): Record<string, unknown> => ({
    model_name: 'tiny-seg',
    inputs: [{ name: 'input', datatype: 'FP32', shape: SHAPE }],
    raw_input_contents: [Buffer.alloc(ELEMENTS * 4)],
  });
  const dims = ['-1', '0', '1', '3', '64', '96', '4096', '9223372036854775807', '-9223372036854775808', String(g.int(-5, 100000))];
  const datatypes = ['FP32', 'FP16', 'FP64', 'INT8', 'UINT8', 'INT64', 'BOOL', 'BYTES', 'fp32', '', 'X'.repeat(40)];
  const kind = g.int(0, 3);
  if (kind === 0) {
    const r = good();
    const field = g.pick(['shape', 'datatype', 'name', 'raw', 'typed', 'model', 'outputs', 'parameters', 'two']);
    const input = (r['inputs'] as Record<string, unknown>[])[0]!;
    if (field === 'shape') input['shape'] = Array.from({ length: g.int(0, 6) }, () => g.pick(dims));
    if (field === 'datatype') input['datatype'] = g.pick(datatypes);
    if (field === 'name') input['name'] = g.pick(['', 'image', 'INPUT', 'input\u0000', 'x'.repeat(500)]);
    if (field === 'raw') r['raw_input_contents'] = Array.from({ length: g.int(0, 3) }, () => Buffer.alloc(g.pick([0, 1, 3, ELEMENTS * 4 - 1, ELEMENTS * 4 + 4, ELEMENTS * 2, ELEMENTS * 4])));
    if (field === 'typed') {
      delete r['raw_input_contents'];
      input['contents'] = g.pick([{ fp32_contents: Array.from({ length: g.pick([0, 1, ELEMENTS - 1, ELEMENTS]) }, () => g.float()) }, { int_contents: [1, 2, 3] }, { bytes_contents: [Buffer.from('x')] }, {}]);
    }
    if (field === 'model') Object.assign(r, g.pick([{ model_name: '' }, { model_name: 'other' }, { model_version: '9' }, { model_version: '../1' }, { model_name: '../../etc/passwd' }]));
    if (field === 'outputs') r['outputs'] = [{ name: g.pick(['logits', 'output', '', 'x'.repeat(100)]) }];
    if (field === 'parameters') r['parameters'] = { [g.pick(['binary_data_output', 'x', ''])]: g.pick([{ bool_param: true }, { int64_param: '-1' }, { string_param: 'y' }]) };
    if (field === 'two') r['inputs'] = [input, { ...input }];
    return { what: `mutated ${field}`, req: r };
  }
  return {
    what: 'random request',
    req: {
      model_name: g.pick(['tiny-seg', 'tiny-seg', '', 'other']),
      model_version: g.pick(['', '', '1', '2', 'x']),
      id: g.chance(0.5) ? String(g.int(0, 1e6)) : '',
      inputs: Array.from({ length: g.int(0, 3) }, () => ({
        name: g.pick(['input', 'input', 'x']),
        datatype: g.pick(datatypes),
        shape: Array.from({ length: g.int(0, 6) }, () => g.pick(dims)),
        ...(g.chance(0.3) ? { contents: { fp32_contents: Array.from({ length: g.int(0, 50) }, () => g.float()) } } : {}),
      })),
      raw_input_contents: Array.from({ length: g.int(0, 2) }, () => (g.chance(0.3) ? Buffer.alloc(ELEMENTS * 4) : g.bytes(g.int(0, 512)))),
    },
  };
}

/** Answers outside the table, per test: `${where} ${what}: ${answer}`. */
let unaccounted: string[] = [];
const note = (where: string, what: string, code: string): void => void unaccounted.push(`${where} ${what.slice(0, 200)}: ${code.slice(0, 300)}`);

describe('fuzz', () => {
  beforeEach(() => {
    unaccounted = [];
  });

  it(`REST uploads: ${REST_CASES} random and mutated requests, every answer a table code`, async () => {
    const g = new Gen(SEED);
    const codes: string[] = [];
    for (let i = 0; i < REST_CASES; i++) {
      const c = restCase(g);
      const r = await post(gateway.ports['http']!, c);
      if ('error' in r) {
        note('REST', c.what, `no answer (${r.error})`);
        continue;
      }
      const k = classifyRest(r.status, r.body);
      codes.push(k.code);
      if (!k.accounted) note('REST', `${c.what} ${c.path}`, `${r.status} ${r.body.slice(0, 120)}`);
    }
    console.log(`fuzz REST: ${JSON.stringify(countCodes(codes))}`);
    expect(unaccounted).toEqual([]);
    // The generator reaches both sides of the table.
    expect(codes).toContain('OK');
    expect(new Set(codes).size).toBeGreaterThan(3);
  });

  it(`OIP ModelInfer: ${OIP_CASES} random and mutated requests (direct and through the gateway), never INTERNAL`, async () => {
    const g = new Gen(SEED + 1);
    const { predictV2 } = loadProtos();
    const opts = { 'grpc.max_send_message_length': 64 * 1024 * 1024, 'grpc.max_receive_message_length': 64 * 1024 * 1024 };
    const targets = [`127.0.0.1:${inference.ports['grpc']}`, `127.0.0.1:${gateway.ports['grpc']}`];
    const clients = targets.map((t) => new predictV2.inference.GRPCInferenceService(t, grpc.credentials.createInsecure(), opts));
    const codes: string[] = [];
    for (let i = 0; i < OIP_CASES; i++) {
      const { what, req } = oipRequest(g);
      const client = clients[i % 2]!;
      const err = await new Promise<grpc.ServiceError | null>((resolve) => {
        client.ModelInfer(req as never, { deadline: Date.now() + 30_000 }, (e) => resolve(e));
      });
      const k = classifyGrpc(err);
      codes.push(k.code);
      if (!k.accounted || k.code === 'INTERNAL') note(i % 2 ? 'OIP via gateway' : 'OIP', `${what} ${JSON.stringify(req, (key, v: unknown) => (key === 'raw_input_contents' ? `[${(v as Buffer[]).length} buffers]` : v)).slice(0, 300)}`, `${k.code} ${err?.details ?? ''}`);
    }
    for (const c of clients) c.close();
    console.log(`fuzz OIP: ${JSON.stringify(countCodes(codes))}`);
    expect(unaccounted).toEqual([]);
    expect(codes).toContain('OK');
    expect(codes).toContain('INVALID_INPUT');
  });

  it(`OIP ModelInfer: ${RAW_CASES} undecodable or mutated protobuf messages are answered with a status, nothing crashes`, async () => {
    const g = new Gen(SEED + 2);
    const client = new grpc.Client(`127.0.0.1:${inference.ports['grpc']}`, grpc.credentials.createInsecure());
    const { predictV2 } = loadProtos();
    // A valid encoded request to mutate, made by the service's own message type.
    const encode = (predictV2.inference.GRPCInferenceService.service.ModelInfer.requestSerialize as (v: unknown) => Buffer).bind(null);
    const valid = encode({ model_name: 'tiny-seg', inputs: [{ name: 'input', datatype: 'FP32', shape: SHAPE }], raw_input_contents: [Buffer.alloc(ELEMENTS * 4)] });
    const statuses: string[] = [];
    for (let i = 0; i < RAW_CASES; i++) {
      const payload = g.chance(0.3) ? g.bytes(g.int(0, 256)) : g.mutate(valid);
      const err = await new Promise<grpc.ServiceError | null>((resolve) => {
        client.makeUnaryRequest('/inference.GRPCInferenceService/ModelInfer', (b: Buffer) => b, (b: Buffer) => b, payload, { deadline: Date.now() + 30_000 }, (e) => resolve(e));
      });
      const k = classifyGrpc(err);
      // Bytes that do not even parse never reach segserve code: grpc-js answers for it. Those
      // must still be an answer (not a hang or a reset); anything segserve answered is accounted.
      statuses.push(k.accounted ? k.code : `${k.code} (grpc-js)`);
      if (err?.code === grpc.status.DEADLINE_EXCEEDED || err?.code === grpc.status.UNAVAILABLE) note('OIP raw', `case ${i}`, `${k.code} ${err.details}`);
    }
    client.close();
    console.log(`fuzz OIP raw: ${JSON.stringify(countCodes(statuses))}`);
    expect(unaccounted).toEqual([]);
  });

  it('afterwards: no process crashed or restarted, and a good request still succeeds', async () => {
    expect(census.casualties()).toEqual([]);
    const form = new FormData();
    form.append('image', new Blob([new Uint8Array(images[0]!)]), 'x.png');
    const res = await fetch(`http://127.0.0.1:${gateway.ports['http']}/v1/models/tiny-seg/segment`, { method: 'POST', body: form });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('image/png');
  });
});
