// Issue 11 at the inference service, one test per class of attack: each gets its code from the
// error table and the process lives. Uploads that bound neither memory nor CPU by their pixel
// count (a 24000000×1 strip), animated images, an image whose processing could never fit the
// memory budget, and a request abandoned in the middle of its work, whose slot must come back
// while the work it started still runs. A real `segserve inference` process on loopback.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { crc32 } from 'node:zlib';
import { spawnSegserve, waitFor, type Spawned } from '../helpers/process.js';
import { MODELS, clients, healthStatus, parseSample, png, pngBomb, segment, startTestServer, syntheticImage, type Clients } from './helpers.js';

interface ServingLine {
  readonly grpc_port: number;
  readonly metrics_port: number;
  readonly budget_mb: number;
}

interface Serving {
  readonly proc: Spawned;
  readonly line: ServingLine;
  readonly clients: Clients;
  metrics(): Promise<string>;
}

async function start(model: string, env: Record<string, string>): Promise<Serving> {
  const proc = spawnSegserve(['inference', '--model', model, '--grpc-port', '0', '--metrics-port', '0'], { env: { SEGSERVE_HOST: '127.0.0.1', SEGSERVE_LOG_LEVEL: 'info', ...env } });
  const line = await proc.waitForJson<ServingLine>((o) => o['msg'] === 'serving', 60_000);
  return { proc, line, clients: clients(`127.0.0.1:${line.grpc_port}`), metrics: async () => (await fetch(`http://127.0.0.1:${line.metrics_port}/metrics`)).text() };
}

async function stop(s: Serving | undefined): Promise<void> {
  s?.clients.close();
  await s?.proc.stop();
}

/** An APNG: a PNG with an acTL chunk (2 frames) right after IHDR. */
function apng(pngBytes: Buffer): Buffer {
  const data = Buffer.alloc(8);
  data.writeUInt32BE(2, 0);
  const head = Buffer.from('\0\0\0\x08acTL', 'latin1');
  const crc = Buffer.alloc(4);
  crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), data])) >>> 0, 0);
  return Buffer.concat([pngBytes.subarray(0, 33), head, data, crc, pngBytes.subarray(33)]);
}

async function expectAlive(s: Serving): Promise<void> {
  expect(s.proc.hasExited()).toBe(false);
  expect(await healthStatus(s.clients)).toBe('SERVING');
  const ok = await segment(s.clients, await png(syntheticImage(48, 32)));
  expect(ok.error?.details).toBeUndefined();
}

describe('hostile uploads at the inference service (issue 11)', () => {
  let s: Serving | undefined;
  beforeAll(async () => {
    // The default limits; a 200 MiB memory limit, so that the budget is small enough to test.
    s = await start(MODELS.seg, { SEGSERVE_MEMORY_LIMIT_MB: '200' });
  });
  afterAll(() => stop(s));

  it.each<[string, number, number]>([
    ['24000000×1', 24_000_000, 1],
    ['1×24000000', 1, 24_000_000],
  ])('a %s PNG (within the pixel limit) → TOO_LARGE by its sides, before decoding', async (_name, w, h) => {
    const r = await segment(s!.clients, pngBomb(w, h));
    expect(r.code).toBe('TOO_LARGE');
    expect(r.error?.details).toMatch(/times too (wide|tall)/);
    await expectAlive(s!);
  });

  it('an animated PNG (acTL) → UNSUPPORTED_MEDIA_TYPE, as docs/architecture.md#request-data-flow says', async () => {
    const r = await segment(s!.clients, apng(await png(syntheticImage(32, 32))));
    expect(r.code).toBe('UNSUPPORTED_MEDIA_TYPE');
    expect(r.error?.details).toMatch(/animated png/);
    await expectAlive(s!);
  });

  it('an image whose processing could never fit the memory budget → TOO_LARGE, naming the budget', async () => {
    const budgetMb = s!.line.budget_mb;
    expect(budgetMb).toBeGreaterThan(0);
    // A PNG header declaring a 3:2 image whose decoded pixels alone exceed the budget.
    const pixels = Math.min(23_000_000, Math.ceil((budgetMb * 2 ** 20) / 3) * 2);
    const w = Math.ceil(Math.sqrt(pixels * 1.5));
    const h = Math.ceil(pixels / w);
    const r = await segment(s!.clients, pngBomb(w, h));
    expect(r.code).toBe('TOO_LARGE');
    expect(r.error?.details).toMatch(/may hold at most/);
    const exported = parseSample(await s!.metrics(), 'segserve_inference_memory_budget_bytes') ?? 0;
    expect(Math.abs(exported - budgetMb * 2 ** 20)).toBeLessThanOrEqual(2 ** 20);
    await expectAlive(s!);
  });
});

describe('a request abandoned in the middle of its work (issue 11)', () => {
  let s: Serving | undefined;
  beforeAll(async () => {
    // One slot, no queue: a second request is admitted only if the first gave its slot back.
    s = await start(MODELS.slow, { SEGSERVE_MAX_CONCURRENCY: '1', SEGSERVE_MAX_QUEUE: '0' });
  });
  afterAll(() => stop(s));

  it('gives its slot back when its deadline passes, while the model run it started goes on', async () => {
    const image = await png(syntheticImage(384, 256, 3));
    // The slow fixture's run takes over a second: the deadline passes in the middle of it.
    const first = await segment(s!.clients, image, {}, { deadline: Date.now() + 300 });
    expect(['DEADLINE', 4]).toContain(first.code ?? first.error?.code);
    // The server's deadline runs from when the call reached it, so it passes a little after the
    // client's: the slot is back once the server says so — while the abandoned run still goes on.
    await waitFor(async () => {
      const m = await s!.metrics();
      return parseSample(m, 'segserve_inference_in_flight') === 0 && parseSample(m, 'segserve_inference_abandoned_in_flight') === 1;
    }, { what: 'the slot given back while the abandoned run goes on' });
    // Admitted at once (no OVERLOADED), then waits for the session the abandoned run holds.
    const second = await segment(s!.clients, image);
    expect(second.code).toBeUndefined();
    expect(second.value?.width).toBe(384);
    expect(parseSample(await s!.metrics(), 'segserve_inference_abandoned_in_flight')).toBe(0);
    await expectAlive(s!);
  });
});

describe('upload reservations taken by the gRPC edge when a call arrives', () => {
  it('with every place taken, refuse a call OVERLOADED on its headers: its message is never charged', async () => {
    await using s = await startTestServer({ model: MODELS.seg, env: { SEGSERVE_MAX_CONCURRENCY: '2', SEGSERVE_MAX_QUEUE: '3' } });
    const service = s.proc.service;
    const image = await png(syntheticImage(48, 32));
    // Five places (2 slots + 3 queued), taken as five arriving calls would take them.
    const held = Array.from({ length: 5 }, () => service.reserveArrival());
    const refused = await segment(s.clients, image);
    expect(refused.code).toBe('OVERLOADED');
    expect(await s.sample('segserve_inference_admitted_bytes')).toBe(0);
    for (const r of held) r.release();
    const ok = await segment(s.clients, image);
    expect(ok.value?.width).toBe(48);
    expect(await s.sample('segserve_inference_admitted_bytes')).toBe(0);
  });


  it('refuse the excess of a burst before its bytes have arrived; a reserved request adopts its charge', async () => {
    await using s = await startTestServer({ model: MODELS.seg, env: { SEGSERVE_MAX_CONCURRENCY: '2', SEGSERVE_MAX_QUEUE: '3' } });
    const service = s.proc.service;
    const image = await png(syntheticImage(48, 32));
    // Five places (2 slots + 3 queued): five arriving messages take them all.
    const held = Array.from({ length: 5 }, () => service.reserveUpload(image.length));
    expect(() => service.reserveUpload(image.length)).toThrow(expect.objectContaining({ code: 'OVERLOADED' }));
    held.pop()!.release();
    held.push(service.reserveUpload(image.length));
    for (const r of held.slice(1)) r.release();
    // The remaining reservation is adopted by its request: answered OK, its bytes charged once.
    const ctx = { signal: new AbortController().signal, method: 'Segment', upload: held[0]! };
    const reply = await service.segment({ model: '', version: '', image, maskFormat: 'PNG' }, ctx);
    expect(reply.width).toBe(48);
    expect(await s.sample('segserve_inference_admitted_bytes')).toBe(0);
    // Nothing is left reserved: five new arrivals fit again.
    for (const r of Array.from({ length: 5 }, () => service.reserveUpload(image.length))) r.release();
  });
});
