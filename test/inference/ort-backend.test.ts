// The onnxruntime worker pool with fewer sessions than requests inside (docs/architecture.md#memory-and-admission-by-cost as
// implemented: SEGSERVE_ORT_SESSIONS = 1): inputs wait for the session in FIFO order, the wait
// is reported, and an input whose request went away leaves the line without running.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { OrtWorkerPool, segmentSpec } from '@segserve/inference';
import { MODELS, manifestOf } from './helpers.js';

async function slowPool(): Promise<OrtWorkerPool> {
  const m = manifestOf(MODELS.slow);
  return OrtWorkerPool.create({
    onnx: readFileSync(path.join(MODELS.slow, 'model.onnx')),
    io: { inputName: m.input.name, dims: [1, 3, m.input.height, m.input.width], outputName: m.output.name },
    workers: 1,
    settings: { sessions: 1, intraOpThreads: 1, interOpThreads: 1, arena: false, memPattern: false },
    segment: segmentSpec(m),
  });
}

const input = (): Float32Array => new Float32Array(3 * 256 * 384).fill(0.5);

describe('OrtWorkerPool with one session', () => {
  it('runs queued inputs one after another and reports how long each waited', async () => {
    const pool = await slowPool();
    try {
      const order: string[] = [];
      const a = pool.run(input()).then((o) => (order.push('a'), o));
      const b = pool.run(input()).then((o) => (order.push('b'), o));
      const [ra, rb] = await Promise.all([a, b]);
      expect(order).toEqual(['a', 'b']);
      expect(ra.waitedMs).toBeLessThan(50);
      // b waited for all of a's run (~0.7–1.5 s on the slow fixture).
      expect(rb.waitedMs).toBeGreaterThan(200);
      expect(rb.dims).toEqual([1, 2, 256, 384]);
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
      // The session is free again at once: the next input does not wait behind a ghost run.
      const next = await pool.run(input());
      expect(next.waitedMs).toBeLessThan(50);
      // An already aborted signal never enters the line.
      await expect(pool.run(input(), AbortSignal.abort(new Error('gone')))).rejects.toThrow('gone');
    } finally {
      await pool.close();
    }
  });
});
