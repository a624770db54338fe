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
    expect(gate.snapshot).toEqual({ running: 1, queued: 2, heldBytes: 0 });
    first.release();
    first.release(); // idempotent
    (await second).release();
    (await third).release();
    expect(order).toEqual([2, 3]);
    expect(gate.snapshot).toEqual({ running: 0, queued: 0, heldBytes: 0 });
    expect(snapshots.at(-1)).toEqual({ running: 0, queued: 0, heldBytes: 0 });
    expect(Math.max(...snapshots.map((s) => s.running))).toBe(1);
  });

  it('refuseIfFull throws exactly when acquire would refuse, and changes nothing', async () => {
    const gate = new AdmissionGate({ maxConcurrency: 1, maxQueue: 1, queueTimeoutMs: 60_000 });
    gate.refuseIfFull();
    const first = await gate.acquire();
    gate.refuseIfFull(); // the queue place is still free
    const second = gate.acquire();
    expect(() => gate.refuseIfFull()).toThrow(expect.objectContaining({ code: 'OVERLOADED' }));
    expect(gate.snapshot).toEqual({ running: 1, queued: 1, heldBytes: 0 });
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
    expect(gate.snapshot).toEqual({ running: 1, queued: 0, heldBytes: 0 });
    running.release();
    expect(gate.snapshot).toEqual({ running: 0, queued: 0, heldBytes: 0 });
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
    expect(gate.snapshot).toEqual({ running: 1, queued: 0, heldBytes: 0 });
    running.release();
    await expect(settle(gate.acquire(controller.signal))).resolves.toMatchObject({ ok: false });
  });

  it('charges bytes: TOO_LARGE for what could never fit, a wait for what does not fit now, and abandoned work keeps its bytes', async () => {
    const gate = new AdmissionGate({ maxConcurrency: 2, maxQueue: 4, queueTimeoutMs: 60_000, budgetBytes: 100 });
    const never = await settle(gate.acquire(undefined, { door: 60, work: 41 }));
    expect(never.ok ? 'ran' : never.error.code).toBe('TOO_LARGE');
    expect(gate.snapshot).toEqual({ running: 0, queued: 0, heldBytes: 0 });
    const big = await gate.acquire(undefined, { door: 10, work: 60 });
    let started = false;
    const second = gate.acquire(undefined, { door: 10, work: 30 }).then((p) => ((started = true), p));
    // A slot is free, but 70 + 40 > 100: the second waits holding its upload.
    expect(gate.snapshot).toEqual({ running: 1, queued: 1, heldBytes: 80 });
    expect(() => gate.refuseIfFull({ door: 25, work: 0 })).toThrow(expect.objectContaining({ code: 'OVERLOADED' }));
    // The first's client goes away: its slot comes back at once, its bytes when its decode ends.
    big.releaseSlot();
    await Promise.resolve();
    expect(started).toBe(false);
    expect(gate.snapshot).toEqual({ running: 0, queued: 1, heldBytes: 80 });
    big.releaseBytes();
    const p = await second;
    expect(gate.snapshot).toEqual({ running: 1, queued: 0, heldBytes: 40 });
    p.release();
    p.release();
    expect(gate.snapshot).toEqual({ running: 0, queued: 0, heldBytes: 0 });
  });

  it('a budget set after start-up lets waiting requests in', async () => {
    const gate = new AdmissionGate({ maxConcurrency: 2, maxQueue: 4, queueTimeoutMs: 60_000, budgetBytes: 0 });
    const waiting = gate.acquire(undefined, { door: 0, work: 0 });
    expect((await waiting).release).toBeTypeOf('function');
    const refused = await settle(gate.acquire(undefined, { door: 1, work: 1 }));
    expect(refused.ok ? 'ran' : refused.error.code).toBe('TOO_LARGE');
    gate.setBudget(10);
    const ok = await gate.acquire(undefined, { door: 1, work: 1 });
    expect(gate.snapshot.heldBytes).toBe(2);
    ok.release();
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
