import { describe, expect, it } from 'vitest';
import { AdmissionGate, type AdmissionSnapshot } from './admission-gate.js';

const settle = <T>(p: Promise<T>): Promise<{ ok: true; value: T } | { ok: false; error: { code?: string; message: string } }> =>
  p.then(
    (value) => ({ ok: true as const, value }),
    (error: { code?: string; message: string }) => ({ ok: false as const, error }),
  );

describe('AdmissionGate', () => {
  it('runs up to the limit, queues FIFO, rejects beyond the queue with OVERLOADED', async () => {
    const snapshots: AdmissionSnapshot[] = [];
    const gate = new AdmissionGate({ maxConcurrency: 1, maxQueue: 2, queueTimeoutMs: 60_000 }, { onChange: (s) => snapshots.push(s) });
    const first = await gate.acquire();
    const order: number[] = [];
    const second = gate.acquire().then((p) => (order.push(2), p));
    const third = gate.acquire().then((p) => (order.push(3), p));
    const fourth = await settle(gate.acquire());
    expect(fourth.ok ? 'ran' : fourth.error.code).toBe('OVERLOADED');
    expect(gate.snapshot).toEqual({ running: 1, queued: 2 });
    first.release();
    first.release(); // idempotent
    (await second).release();
    (await third).release();
    expect(order).toEqual([2, 3]);
    expect(gate.snapshot).toEqual({ running: 0, queued: 0 });
    expect(snapshots.at(-1)).toEqual({ running: 0, queued: 0 });
    expect(Math.max(...snapshots.map((s) => s.running))).toBe(1);
  });

  it('refuseIfFull throws exactly when acquire would refuse, and changes nothing', async () => {
    const gate = new AdmissionGate({ maxConcurrency: 1, maxQueue: 1, queueTimeoutMs: 60_000 });
    gate.refuseIfFull();
    const first = await gate.acquire();
    gate.refuseIfFull(); // the queue place is still free
    const second = gate.acquire();
    expect(() => gate.refuseIfFull()).toThrow(expect.objectContaining({ code: 'OVERLOADED' }));
    expect(gate.snapshot).toEqual({ running: 1, queued: 1 });
    first.release();
    (await second).release();
    gate.refuseIfFull();
  });

  it('rejects a waiter at its queue timeout and never starts it later', async () => {
    const gate = new AdmissionGate({ maxConcurrency: 1, maxQueue: 4, queueTimeoutMs: 20 });
    const running = await gate.acquire();
    const waited = await settle(gate.acquire());
    expect(waited.ok ? 'ran' : waited.error.code).toBe('OVERLOADED');
    expect(waited.ok ? '' : waited.error.message).toMatch(/waited \d+ ms in the queue \(limit 20 ms\)/);
    expect(gate.snapshot).toEqual({ running: 1, queued: 0 });
    running.release();
    expect(gate.snapshot).toEqual({ running: 0, queued: 0 });
  });

  it('withdraws an aborted waiter with the signal reason', async () => {
    const gate = new AdmissionGate({ maxConcurrency: 1, maxQueue: 4, queueTimeoutMs: 60_000 });
    const running = await gate.acquire();
    const controller = new AbortController();
    const waiting = settle(gate.acquire(controller.signal));
    expect(gate.snapshot.queued).toBe(1);
    controller.abort(Object.assign(new Error('gone'), { code: 'DEADLINE' }));
    const r = await waiting;
    expect(r.ok ? 'ran' : r.error.code).toBe('DEADLINE');
    expect(gate.snapshot).toEqual({ running: 1, queued: 0 });
    running.release();
    await expect(settle(gate.acquire(controller.signal))).resolves.toMatchObject({ ok: false });
  });

  it('idle() resolves when nothing runs or waits', async () => {
    const gate = new AdmissionGate({ maxConcurrency: 1, maxQueue: 1, queueTimeoutMs: 60_000 });
    await gate.idle();
    const p = await gate.acquire();
    const q = gate.acquire();
    let idle = false;
    const done = gate.idle().then(() => (idle = true));
    p.release();
    await Promise.resolve();
    expect(idle).toBe(false);
    (await q).release();
    await done;
    expect(idle).toBe(true);
  });
});
