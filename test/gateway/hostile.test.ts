// Issue 11, "authenticate and bound before deserialising": each hostile input of the issue, sent
// to real inference and gateway processes started as the image starts them (V8 heap capped at
// 192 MiB, API keys on at the gateway). Each answer must be a table code and both processes must
// live. Memory and latency under these attacks are measured by bench/hostile.mjs, not here.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { ERROR_CODE_METADATA_KEY } from '@segserve/proto';
import { ipv4Target, startGatewayProc, startInference, tinySeg, TINY_IMAGES, type GatewayProc, type InferenceProc } from './stack.js';

const KEY = 'hostile-test-key-0123456789';
const IMAGE_ENV = { NODE_OPTIONS: '--max-old-space-size=192' };
let inference: InferenceProc;
let gateway: GatewayProc;
let gw: grpc.Client;
let inf: grpc.Client;

beforeAll(async () => {
  inference = await startInference(tinySeg('1'), IMAGE_ENV);
  gateway = await startGatewayProc({ ...IMAGE_ENV, SEGSERVE_UPSTREAMS: `tiny-seg=${ipv4Target(inference)}`, SEGSERVE_API_KEYS: KEY });
  const options = { 'grpc.max_send_message_length': 64 << 20, 'grpc.enable_retries': 0 };
  gw = new grpc.Client(gateway.address, grpc.credentials.createInsecure(), options);
  inf = new grpc.Client(inference.address, grpc.credentials.createInsecure(), options);
});

afterAll(async () => {
  gw?.close();
  inf?.close();
  await gateway?.[Symbol.asyncDispose]();
  await inference?.[Symbol.asyncDispose]();
});

// Wire bytes by hand: no encoder writes these messages.
function varint(n: number): Buffer {
  const out: number[] = [];
  do {
    out.push((n & 0x7f) | (n >= 0x80 ? 0x80 : 0));
    n = Math.floor(n / 128);
  } while (n > 0);
  return Buffer.from(out);
}
const ld = (field: number, bytes: Buffer): Buffer => Buffer.concat([varint((field << 3) | 2), varint(bytes.length), bytes]);
const str = (field: number, s: string): Buffer => ld(field, Buffer.from(s));
const times = (b: Buffer, n: number): Buffer => Buffer.alloc(b.length * n, b);

const SEGMENT = '/segserve.v1.Segmenter/Segment';
const MODEL_INFER = '/inference.GRPCInferenceService/ModelInfer';

/** Sends raw bytes; resolves with the segserve code of the answer ('OK', a table code, or `grpc:<status>` without one). */
function send(client: grpc.Client, method: string, bytes: Buffer, key?: string): Promise<string> {
  const md = new grpc.Metadata();
  if (key) md.set('authorization', `Bearer ${key}`);
  return new Promise((resolve) => {
    client.makeUnaryRequest(method, (b: Buffer) => b, (b: Buffer) => b, bytes, md, { deadline: Date.now() + 60_000 }, (err) => {
      if (!err) return resolve('OK');
      const code = err.metadata?.get(ERROR_CODE_METADATA_KEY)[0];
      resolve(typeof code === 'string' ? code : `grpc:${grpc.status[err.code]}`);
    });
  });
}

function residentMb(pid: number): number {
  return Number(/^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]) / 1024;
}

function expectAlive(): void {
  expect(gateway.proc.hasExited(), 'gateway exited').toBe(false);
  expect(inference.proc.hasExited(), 'inference exited').toBe(false);
}

/** Raw bytes on a fresh connection; the status and the table body of the answer (read to its Content-Length). */
function rawHttp(raw: string): Promise<{ status: number; body: unknown }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(gateway.httpPort, '127.0.0.1');
    let text = '';
    const answer = (): { status: number; body: unknown } | undefined => {
      const end = text.indexOf('\r\n\r\n');
      if (end < 0) return undefined;
      const head = text.slice(0, end);
      const length = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? NaN);
      const body = text.slice(end + 4);
      if (!(body.length >= length)) return undefined;
      return { status: Number(/^HTTP\/1\.1 (\d+)/.exec(head)?.[1]), body: JSON.parse(body.slice(0, length)) as unknown };
    };
    socket.on('data', (c: Buffer) => {
      text += c.toString('latin1');
      const a = answer();
      if (a) {
        socket.destroy();
        resolve(a);
      }
    });
    socket.on('error', reject);
    socket.on('close', () => reject(new Error(`connection closed before a full answer: ${JSON.stringify(text.slice(0, 200))}`)));
    socket.write(raw);
  });
}

const millionInputs = Buffer.concat([str(1, 'tiny-seg'), times(ld(5, Buffer.alloc(0)), 1_000_000)]);

describe('hostile gRPC messages', () => {
  it('1,000,000 empty inputs without a key: UNAUTHENTICATED before the message is read, the gateway small', async () => {
    expect(await send(gw, MODEL_INFER, millionInputs)).toBe('UNAUTHENTICATED');
    expectAlive();
    expect(residentMb(gateway.proc.pid)).toBeLessThan(256);
  });

  it('1,000,000 empty inputs with a key, and straight to inference: refused before decoding', async () => {
    expect(await send(gw, MODEL_INFER, millionInputs, KEY)).toBe('INVALID_INPUT');
    // The tiny model's input is 72 KiB: the message is over its limit at the length prefix.
    expect(await send(inf, MODEL_INFER, millionInputs)).toBe('TOO_LARGE');
    expectAlive();
  });

  it('a shape of 1,000,000 dims, and 60,000 empty raw_input_contents: INVALID_INPUT', async () => {
    const dims = Buffer.concat([str(1, 'tiny-seg'), ld(5, Buffer.concat([str(1, 'input'), str(2, 'FP32'), ld(3, Buffer.alloc(1_000_000, 1))]))]);
    expect(await send(gw, MODEL_INFER, dims, KEY)).toBe('INVALID_INPUT');
    const raw = Buffer.concat([str(1, 'tiny-seg'), times(ld(7, Buffer.alloc(0)), 60_000)]);
    expect(await send(gw, MODEL_INFER, raw, KEY)).toBe('INVALID_INPUT');
    expect(await send(inf, MODEL_INFER, raw)).toBe('INVALID_INPUT');
    expectAlive();
  });

  it.each([
    ['Segment', SEGMENT],
    ['ModelInfer', MODEL_INFER],
  ])('an undecodable %s: INVALID_INPUT at both edges', async (_name, method) => {
    const junk = Buffer.concat([str(1, 'tiny-seg'), Buffer.from([0x0f, 0x00]), Buffer.from('not protobuf')]);
    expect(await send(gw, method, junk, KEY)).toBe('INVALID_INPUT');
    expect(await send(inf, method, junk)).toBe('INVALID_INPUT');
    expectAlive();
  });

  it('a message over the 32 MiB limit: TOO_LARGE at both edges', async () => {
    const big = Buffer.concat([str(1, 'tiny-seg'), ld(3, Buffer.alloc(33 << 20))]);
    expect(await send(gw, SEGMENT, big, KEY)).toBe('TOO_LARGE');
    expect(await send(inf, SEGMENT, big)).toBe('TOO_LARGE');
    expectAlive();
  });

  it('an ordinary Segment still works through both edges', async () => {
    const ok = Buffer.concat([str(1, 'tiny-seg'), ld(3, readFileSync(path.join(TINY_IMAGES, 'facade-00.png')))]);
    expect(await send(gw, SEGMENT, ok, KEY)).toBe('OK');
    expect(await send(inf, SEGMENT, ok)).toBe('OK');
  });
});

describe('hostile HTTP', () => {
  it('headers over the limit: 431 with the table body', async () => {
    const r = await rawHttp(`GET /v1/models HTTP/1.1\r\nHost: x\r\nX-Pad: ${'a'.repeat(64 * 1024)}\r\n\r\n`);
    expect(r).toMatchObject({ status: 431, body: { error: { code: 'TOO_LARGE' } } });
    expectAlive();
  });

  it.each([
    ['not HTTP at all', 'NOT HTTP AT ALL\r\n\r\n'],
    ['a header line without a colon', 'GET /healthz HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n'],
  ])('%s: 400 with the table body', async (_name, raw) => {
    expect(await rawHttp(raw)).toMatchObject({ status: 400, body: { error: { code: 'INVALID_INPUT' } } });
    expectAlive();
  });

  it('a body declared larger than the upload limit: TOO_LARGE before it is read', async () => {
    const head = `POST /v1/models/tiny-seg/segment HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${KEY}\r\nContent-Type: multipart/form-data; boundary=x\r\nContent-Length: ${40 << 20}\r\n\r\n`;
    expect(await rawHttp(`${head}--x\r\n`)).toMatchObject({ status: 413, body: { error: { code: 'TOO_LARGE' } } });
    expectAlive();
  });
});
