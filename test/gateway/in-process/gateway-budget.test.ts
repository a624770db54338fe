// The gateway's upload budget (issue 11): uploads are charged at the door, against a budget set
// here to exactly 12 MiB (configured limit = headroom + 12 MiB, baseline injected as 0): uploads
// over 0.75 MiB are large, share 6 MiB and are one at a time; a REST upload is charged its
// size, a gRPC one 3 times. Uploads
// of several MiB on a loaded machine: each test gets 60 s, none asserts a duration.
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import * as grpc from '@grpc/grpc-js';
import { ERROR_CODE_METADATA_KEY, loadProtos } from '@segserve/proto';
import { MEMORY_HEADROOM_BYTES } from '../../../services/gateway/src/gateway.js';
import { fakeImage, startFakeUpstream, type FakeUpstream } from './fake-upstream.js';
import { form, startHarness, type Harness } from './harness.js';

const MiB = 2 ** 20;
vi.setConfig({ testTimeout: 60_000, hookTimeout: 60_000 });
let up: FakeUpstream;
let h: Harness;

beforeAll(async () => {
  up = await startFakeUpstream();
  h = await startHarness({ SEGSERVE_UPSTREAMS: `tiny=${up.target}` }, { maxUploadBytes: 16 * MiB, memoryLimitBytes: MEMORY_HEADROOM_BYTES + 12 * MiB, budgetWaitMs: 100 }, { residentBytes: () => 0 });
});
afterAll(async () => {
  await h?.close();
  await up?.close();
});

/** A fake-upstream image of about `bytes` bytes carrying `directive`. */
const sized = (bytes: number, directive = ''): Buffer => Buffer.concat([fakeImage(directive), Buffer.alloc(bytes, 0xab)]);
const post = (image: Buffer, signal?: AbortSignal): Promise<Response> => fetch(`${h.base}/v1/models/tiny/segment`, { method: 'POST', body: form({ image }), ...(signal ? { signal } : {}) });
const errorCode = async (res: Response): Promise<string> => ((await res.json()) as { error: { code: string } }).error.code;

async function heldBytes(): Promise<number> {
  const text = await (await fetch(`${h.base}/metrics`)).text();
  return Number(/^segserve_gateway_upload_memory_bytes\{kind="held"\} (\S+)$/m.exec(text)?.[1]);
}

async function until(what: string, check: () => Promise<boolean> | boolean): Promise<void> {
  for (let i = 0; i < 400; i++) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`timed out waiting for ${what}`);
}

describe('upload budget', () => {
  it('reports the budget', async () => {
    const text = await (await fetch(`${h.base}/metrics`)).text();
    expect(text).toMatch(new RegExp(`^segserve_gateway_upload_memory_bytes\\{kind="budget"\\} ${12 * MiB}$`, 'm'));
  });

  it('refuses TOO_LARGE an upload that could never fit, before forwarding anything', async () => {
    const calls = up.calls.length;
    const res = await post(sized(10 * MiB));
    expect(res.status).toBe(413);
    expect(await errorCode(res)).toBe('TOO_LARGE');
    expect(up.calls.length).toBe(calls);
  });

  it('makes a large upload wait for room, then OVERLOADED; small ones pass meanwhile; all is given back', async () => {
    const holder = new AbortController();
    const calls = up.calls.length;
    const held = post(sized(5 * MiB, 'sleep:60000'), holder.signal).catch(() => undefined);
    await until('the first upload to reach the upstream', () => up.calls.length > calls);

    const second = await post(sized(5 * MiB));
    expect(second.status).toBe(503);
    expect(second.headers.get('retry-after')).toBe('1');
    expect(await errorCode(second)).toBe('OVERLOADED');

    expect((await post(fakeImage())).status).toBe(200);

    holder.abort();
    await held;
    await until('the budget to be given back', async () => (await heldBytes()) === 0);
    expect((await post(sized(5 * MiB))).status).toBe(200);
    expect(await heldBytes()).toBe(0);
  });

  it('takes one large upload at a time: a second waits for it, then OVERLOADED, though the budget has room', async () => {
    const holder = new AbortController();
    const calls = up.calls.length;
    // 1 MiB each: large here (over 12/16 MiB), and several fit the large share (6 MiB) together.
    const held = post(sized(MiB, 'sleep:60000'), holder.signal).catch(() => undefined);
    await until('the upload to reach the upstream', () => up.calls.length > calls);

    const second = await post(sized(MiB));
    expect(second.status).toBe(503);
    expect(await errorCode(second)).toBe('OVERLOADED');
    expect(up.calls.length).toBe(calls + 1);
    expect((await post(fakeImage())).status).toBe(200);

    holder.abort();
    await held;
    await until('the budget to be given back', async () => (await heldBytes()) === 0);
    expect((await post(sized(MiB))).status).toBe(200);
    expect(await heldBytes()).toBe(0);
  });

  it('charges a gRPC upload at its length prefix: TOO_LARGE when it could never fit', async () => {
    const protos = loadProtos();
    const client = new protos.segmenter.segserve.v1.Segmenter(h.grpcAddress, grpc.credentials.createInsecure(), { 'grpc.max_send_message_length': 64 * MiB });
    try {
      const code = await new Promise<string | undefined>((resolve) => {
        client.Segment({ model: 'tiny', image: sized(8 * MiB) }, (err) => resolve(err?.metadata.get(ERROR_CODE_METADATA_KEY)[0] as string | undefined));
      });
      expect(code).toBe('TOO_LARGE');
    } finally {
      client.close();
    }
  });
});
