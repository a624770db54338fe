// The onnxruntime worker pool with fewer sessions than requests inside (docs/architecture.md#memory-and-admission-by-cost as
// implemented: SEGSERVE_ORT_SESSIONS = 1): inputs wait for the session in FIFO order, the wait
// is reported, and an input whose request went away leaves the line without running.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { OrtWorkerPool, classStats, segmentSpec } from '@segserve/inference';
import { MODELS, manifestOf } from './helpers.js';

async function slowPool(): Promise<OrtWorkerPool> {
  const m = manifestOf(MODELS.slow);
  return OrtWorkerPool.create({
    onnx: readFileSync(path.join(MODELS.slow, 'model.onnx')),
    io: { inputName: m.input.name, dims: [1, 3, m.input.height, m.input.width], outputName: m.output.name },
    workers: 1,
    settings: { sessions: 1, intraOpThreads: 1, interOpThreads: 1, arena: false, memPattern: false, spinning: false },
    segment: segmentSpec(m),
  });
}

const input = (): Float32Array => new Float32Array(3 * 256 * 384).fill(0.5);
const rgb = (): Uint8Array => new Uint8Array(384 * 256 * 3).fill(128);
const workerMs = (ms: { preprocess: number; infer: number; postprocess: number }): number => ms.preprocess + ms.infer + ms.postprocess;

// The waits are checked against bounds taken around the calls, never against fixed times: a
// busy machine stretches both sides alike.
describe('OrtWorkerPool with one session', () => {
  it('runs queued inputs one after another and reports how long each waited', async () => {
    const pool = await slowPool();
    try {
      const order: string[] = [];
      const t0 = performance.now();
      const a = pool.segment(rgb()).then((o) => (order.push('a'), o));
      const t1 = performance.now();
      const b = pool.segment(rgb()).then((o) => (order.push('b'), o));
      const t2 = performance.now();
      const [ra, rb] = await Promise.all([a, b]);
      expect(order).toEqual(['a', 'b']);
      // a went to the free session within its own call: its wait fits inside the call.
      expect(ra.waitedMs).toBeLessThanOrEqual(t1 - t0);
      // b was queued before a's run could have ended, and left the line only after it: its wait
      // covers a's whole run in the worker, less the time b took to be queued.
      expect(rb.waitedMs).toBeGreaterThanOrEqual(workerMs(ra.ms) - (t2 - t0));
      expect(rb.waitedMs).toBeGreaterThan(ra.waitedMs);
      expect([rb.width, rb.height]).toEqual([384, 256]);
      // The worker counts each class with its argmax: the counts are those of the map it sent.
      const names = manifestOf(MODELS.slow).classes;
      expect(Array.from(rb.counts.subarray(0, names.length))).toEqual(classStats(rb.classes, names).map((s) => s.pixels));
      expect(rb.counts.reduce((x, y) => x + y, 0)).toBe(384 * 256);
    } finally {
      await pool.close();
    }
  });

  it('each queued image reaches the session as it was given, also when the next one is queued while it runs', async () => {
    const pool = await slowPool();
    try {
      // Two different photographs-to-be: a gradient and its negative.
      const a = Uint8Array.from({ length: 384 * 256 * 3 }, (_, k) => (k * 7) & 0xff);
      const b = a.map((v) => 255 - v);
      const same = (x: Uint8Array, y: Uint8Array): boolean => Buffer.from(x.buffer, x.byteOffset, x.length).equals(y);
      const [ma, mb] = [(await pool.segment(a)).classes, (await pool.segment(b)).classes];
      expect(same(ma, mb)).toBe(false);
      const queued = await Promise.all([pool.segment(a), pool.segment(b), pool.segment(a)]);
      expect(queued.map((o, i) => same(o.classes, [ma, mb, ma][i]!))).toEqual([true, true, true]);
      await expect(pool.segment(new Uint8Array(384 * 256 * 3 - 1))).rejects.toMatchObject({ code: 'INTERNAL' });
    } finally {
      await pool.close();
    }
  });

  it('an abort while waiting withdraws the input at once; the running one finishes; nothing is left behind', async () => {
    const pool = await slowPool();
    try {
      const running = pool.run(input());
      const ctl = new AbortController();
      const waiting = pool.run(input(), ctl.signal);
      const t0 = performance.now();
      ctl.abort(new Error('client went away'));
      await expect(waiting).rejects.toThrow('client went away');
      const withdrawnAfter = performance.now() - t0;
      const out = await running;
      const ranFor = performance.now() - t0;
      expect(withdrawnAfter).toBeLessThan(ranFor);
      expect(out.dims).toEqual([1, 2, 256, 384]);
      expect(pool.abandoned).toBe(0);
      // The session is free again at once: the next input goes to it within its own call
      // instead of waiting behind a ghost run of the withdrawn one.
      const next = input();
      const n0 = performance.now();
      const pending = pool.run(next);
      const n1 = performance.now();
      expect((await pending).waitedMs).toBeLessThanOrEqual(n1 - n0);
      // An already aborted signal never enters the line.
      await expect(pool.run(input(), AbortSignal.abort(new Error('gone')))).rejects.toThrow('gone');
    } finally {
      await pool.close();
    }
  });
});
