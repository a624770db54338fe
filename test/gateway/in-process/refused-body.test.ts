// A request refused before its body was read still gets its answer when the client writes the
// whole body before it reads anything (Python's http.client and requests, curl without
// Expect: 100-continue over a slow link). A server that stops reading a refused body and closes
// the connection leaves such a client blocked in its write until the close, and the reset that
// follows makes the client's kernel drop the answer it had not read yet: the client sees a broken
// pipe, not the table code. The client here is a raw socket that finishes writing before it reads.
// A client that says `Expect: 100-continue` and waits (curl) gets the refusal instead of
// `100 Continue` and never sends its body; one that says it and writes its body anyway is read
// like the others.
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import net from 'node:net';
import { MEMORY_HEADROOM_BYTES } from '../../../services/gateway/src/gateway.js';
import { fakeImage, startFakeUpstream, type FakeUpstream } from './fake-upstream.js';
import { form, startHarness, type Harness } from './harness.js';

const MiB = 2 ** 20;
const KEY = 'refused-body-test-key-0123456789';
vi.setConfig({ testTimeout: 60_000, hookTimeout: 60_000 });
let up: FakeUpstream;
let h: Harness;

beforeAll(async () => {
  up = await startFakeUpstream();
  h = await startHarness(
    { SEGSERVE_UPSTREAMS: `tiny=${up.target}`, SEGSERVE_API_KEYS: KEY },
    { maxUploadBytes: 16 * MiB, memoryLimitBytes: MEMORY_HEADROOM_BYTES + 12 * MiB, budgetWaitMs: 100 },
    { residentBytes: () => 0 },
  );
});
afterAll(async () => {
  await h?.close();
  await up?.close();
});

/** A multipart body of about `bytes` bytes carrying a fake-upstream image. */
function multipart(bytes: number): { body: Buffer; contentType: string } {
  const boundary = 'refused-body-test-boundary';
  const head = Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="image"; filename="a.bin"\r\nContent-Type: application/octet-stream\r\n\r\n`);
  const image = Buffer.concat([fakeImage(), Buffer.alloc(bytes, 0xab)]);
  return { body: Buffer.concat([head, image, Buffer.from(`\r\n--${boundary}--\r\n`)]), contentType: `multipart/form-data; boundary=${boundary}` };
}

/**
 * Writes the request whole, waits until every byte is handed to the kernel, then reads the answer
 * (with `expect`, the request says `Expect: 100-continue` but does not wait for it: the RFC allows that).
 */
function postWriteFirst(path: string, { body, contentType }: { body: Buffer; contentType: string }, key?: string, expect = false): Promise<{ status: number; code: string | undefined }> {
  const { hostname, port } = new URL(h.base);
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(port), hostname);
    socket.on('error', reject);
    socket.pause();
    const head = [`POST ${path} HTTP/1.1`, `Host: ${hostname}:${port}`, `Content-Type: ${contentType}`, `Content-Length: ${body.length}`];
    if (key) head.push(`Authorization: Bearer ${key}`);
    if (expect) head.push('Expect: 100-continue');
    socket.write(`${head.join('\r\n')}\r\n\r\n`);
    socket.write(body, (err) => {
      if (err) return reject(err);
      const chunks: Buffer[] = [];
      socket.on('data', (c: Buffer) => chunks.push(c));
      socket.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8').replace(/^HTTP\/1\.1 100 Continue\r\n\r\n/, '');
        const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0);
        const json = text.slice(text.indexOf('\r\n\r\n') + 4);
        let code: string | undefined;
        try {
          code = (JSON.parse(json) as { error?: { code?: string } }).error?.code;
        } catch {
          code = undefined;
        }
        resolve({ status, code });
      });
      socket.resume();
      socket.end();
    });
  });
}

const REFUSALS = [
  { what: 'over the upload limit (TOO_LARGE)', bytes: 24 * MiB, path: '/v1/models/tiny/segment', key: KEY, status: 413, code: 'TOO_LARGE' },
  { what: 'too large for the budget (TOO_LARGE)', bytes: 12 * MiB, path: '/v1/models/tiny/segment', key: KEY, status: 413, code: 'TOO_LARGE' },
  { what: 'without an API key (UNAUTHENTICATED)', bytes: 12 * MiB, path: '/v1/models/tiny/segment', key: undefined, status: 401, code: 'UNAUTHENTICATED' },
  { what: 'for a model not served (MODEL_NOT_FOUND)', bytes: 12 * MiB, path: '/v1/models/nope/segment', key: KEY, status: 404, code: 'MODEL_NOT_FOUND' },
];

/**
 * Sends the request's head with `Expect: 100-continue` and waits for the first answer, as curl
 * does; sends the body only after `100 Continue`. What came first, and the final status and code.
 */
function postExpecting(path: string, { body, contentType }: { body: Buffer; contentType: string }, key?: string): Promise<{ first: string; status: number; code: string | undefined; keepAlive: boolean }> {
  const { hostname, port } = new URL(h.base);
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(port), hostname);
    socket.on('error', reject);
    const head = [`POST ${path} HTTP/1.1`, `Host: ${hostname}:${port}`, `Content-Type: ${contentType}`, `Content-Length: ${body.length}`, 'Expect: 100-continue'];
    if (key) head.push(`Authorization: Bearer ${key}`);
    socket.write(`${head.join('\r\n')}\r\n\r\n`);
    let text = '';
    let first: string | undefined;
    socket.on('data', (c: Buffer) => {
      text += c.toString('utf8');
      first ??= /^HTTP\/1\.1 (\d{3})/.exec(text)?.[1];
      if (text.startsWith('HTTP/1.1 100 Continue\r\n\r\n')) {
        text = text.slice('HTTP/1.1 100 Continue\r\n\r\n'.length);
        socket.write(body);
      }
      const end = text.indexOf('\r\n\r\n');
      const length = Number(/\r\ncontent-length: (\d+)/i.exec(text)?.[1] ?? -1);
      if (end < 0 || length < 0 || text.length < end + 4 + length) return;
      socket.destroy();
      const json = /\r\ncontent-type: application\/json/i.test(text.slice(0, end)) ? (JSON.parse(text.slice(end + 4, end + 4 + length)) as { error?: { code?: string } }) : {};
      resolve({ first: first ?? '', status: Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0), code: json.error?.code, keepAlive: !/\r\nconnection: close/i.test(text.slice(0, end)) });
    });
  });
}

describe('a client that writes its whole body before it reads gets its refusal', () => {
  it.each(REFUSALS)('$what', async ({ bytes, path, key, status, code }) => {
    expect(await postWriteFirst(path, multipart(bytes), key)).toEqual({ status, code });
  });

  it.each(REFUSALS)('$what, also when it says Expect: 100-continue but sends its body without waiting', async ({ bytes, path, key, status, code }) => {
    expect(await postWriteFirst(path, multipart(bytes), key, true)).toEqual({ status, code });
  });

  it('and the gateway goes on answering', async () => {
    const res = await fetch(`${h.base}/v1/models/tiny/segment`, { method: 'POST', headers: { authorization: `Bearer ${KEY}` }, body: form({ image: fakeImage() }) });
    expect(res.status).toBe(200);
  });
});

describe('Expect: 100-continue is answered at the door', () => {
  it.each(REFUSALS)('$what: the refusal comes instead of 100 Continue, so the body is never sent', async ({ bytes, path, key, status, code }) => {
    expect(await postExpecting(path, multipart(bytes), key)).toEqual({ first: String(status), status, code, keepAlive: true });
  });

  it('an admitted upload gets 100 Continue, then its answer', async () => {
    expect(await postExpecting('/v1/models/tiny/segment', multipart(MiB), KEY)).toEqual({ first: '100', status: 200, code: undefined, keepAlive: true });
  });
});
