import { describe, expect, it } from 'vitest';
import { chargeCeiling, decideCharge, requestBudgetBytes, type ChargePolicy, type LedgerState } from './memory-budget.js';
import { MemoryLedger } from './memory-ledger.js';
import { SegserveError } from '@segserve/proto';

const MiB = 2 ** 20;

describe('requestBudgetBytes', () => {
  it.each([
    ['a 512 MiB pod', 512 * MiB, 4096 * MiB, 100 * MiB, 64 * MiB, 348 * MiB],
    ['a 2 GiB pod, same baseline', 2048 * MiB, 4096 * MiB, 100 * MiB, 64 * MiB, 1884 * MiB],
    ['no cgroup limit: the configured value', undefined, 1024 * MiB, 100 * MiB, 64 * MiB, 860 * MiB],
    ['a baseline above the limit: nothing, never negative', 128 * MiB, 1024 * MiB, 150 * MiB, 64 * MiB, 0],
  ] as const)('%s', (_name, limitBytes, configuredBytes, baselineBytes, headroomBytes, expected) => {
    expect(requestBudgetBytes({ limitBytes, configuredBytes, baselineBytes, headroomBytes })).toBe(expected);
  });
});

describe('decideCharge', () => {
  const policy: ChargePolicy = { largeBytes: 100, largeShare: 0.75 };
  const state = (held: number, heldLarge = 0): LedgerState => ({ capacity: 1000, held, heldLarge });
  it.each([
    ['small, idle', state(0), 50, 0, 'admit'],
    ['small, fills the budget exactly', state(950), 50, 0, 'admit'],
    ['small, one byte over', state(951), 50, 0, 'wait'],
    ['small beside large charges at their share', state(750, 750), 50, 0, 'admit'],
    ['large, idle', state(0), 700, 0, 'admit'],
    ['large, at the large share exactly', state(0), 750, 0, 'admit'],
    ['large, over the large share: never fits', state(0), 751, 0, 'never'],
    ['large, others hold large bytes', state(400, 400), 400, 0, 'wait'],
    ['large, small charges hold the rest', state(900, 0), 200, 0, 'wait'],
    ['grow small → large within the share', state(90, 0), 60, 90, 'admit'],
    ['grow large past the share', state(700, 700), 60, 700, 'never'],
    ['grow large while others hold large bytes', state(800, 800), 100, 300, 'wait'],
    ['grow large, room left', state(300, 300), 100, 300, 'admit'],
    ['a budget of nothing', { capacity: 0, held: 0, heldLarge: 0 }, 1, 0, 'never'],
  ] as const)('%s → %s', (_name, s, bytes, holding, kind) => {
    expect(decideCharge(s, { bytes, holding }, policy).kind).toBe(kind);
  });

  it('names the most one charge may hold when it refuses', () => {
    expect(decideCharge(state(0), { bytes: 900 }, policy)).toEqual({ kind: 'never', ceiling: 750 });
    expect(chargeCeiling(1000, policy, 50)).toBe(1000);
  });
});

describe('MemoryLedger', () => {
  const ledger = (capacity = 1000, maxWaiting = 4): MemoryLedger => new MemoryLedger({ capacityBytes: capacity, maxWaiting, policy: { largeBytes: 100, largeShare: 0.75 } });
  const code = (fn: () => unknown): string | undefined => {
    try {
      fn();
      return undefined;
    } catch (err) {
      return err instanceof SegserveError ? err.code : String(err);
    }
  };

  it('charges, grows and releases exactly once', () => {
    const l = ledger();
    const c = l.tryCharge(60);
    c.grow(40);
    expect(l.snapshot).toMatchObject({ held: 100, heldLarge: 0 });
    c.grow(1);
    expect(l.snapshot).toMatchObject({ held: 101, heldLarge: 101 });
    c.release();
    c.release();
    expect(l.snapshot).toMatchObject({ held: 0, heldLarge: 0 });
    expect(() => c.grow(1)).toThrow(/after release/);
  });

  it('refuses TOO_LARGE what could never fit and OVERLOADED what does not fit now', () => {
    const l = ledger();
    expect(code(() => l.tryCharge(800))).toBe('TOO_LARGE');
    const big = l.tryCharge(700);
    expect(code(() => l.tryCharge(200))).toBe('OVERLOADED');
    expect(code(() => l.tryCharge(100))).toBeUndefined();
    big.release();
    expect(l.snapshot.held).toBe(100);
  });

  it('hold() counts memory already held even past the budget; others then wait', () => {
    const l = ledger();
    const h = l.hold(1200);
    expect(l.snapshot.held).toBe(1200);
    expect(code(() => l.tryCharge(1))).toBe('OVERLOADED');
    h.release();
    expect(l.snapshot.held).toBe(0);
  });

  it('wakes waiters that fit, oldest first, and lets small charges pass a waiting large one', async () => {
    const l = ledger();
    const first = l.tryCharge(700);
    const order: string[] = [];
    const large = l.charge(600, { waitMs: 10_000 }).then((c) => (order.push('large'), c));
    // A small charge that fits now is not held up by the large waiter.
    const small = await l.charge(50, { waitMs: 10_000 });
    order.push('small');
    expect(l.snapshot).toMatchObject({ held: 750, waiting: 1 });
    first.release();
    const c = await large;
    expect(order).toEqual(['small', 'large']);
    expect(l.snapshot).toMatchObject({ held: 650, heldLarge: 600, waiting: 0 });
    c.release();
    small.release();
    expect(l.snapshot.held).toBe(0);
  });

  it('a large charge queues behind a large waiter even when it would fit', async () => {
    const l = ledger();
    const a = l.tryCharge(500);
    const waiting = l.charge(700, { waitMs: 10_000 });
    await expect(l.charge(200, { waitMs: 0 })).rejects.toMatchObject({ code: 'OVERLOADED' });
    a.release();
    (await waiting).release();
  });

  it('times out, withdraws on abort, and refuses beyond maxWaiting', async () => {
    const l = ledger(1000, 1);
    const a = l.tryCharge(700);
    await expect(l.charge(500, { waitMs: 5 })).rejects.toMatchObject({ code: 'OVERLOADED' });
    const abort = new AbortController();
    const w = l.charge(500, { waitMs: 10_000, signal: abort.signal });
    await expect(l.charge(500, { waitMs: 10_000 })).rejects.toMatchObject({ code: 'OVERLOADED' });
    abort.abort(new SegserveError('UNAVAILABLE', 'gone'));
    await expect(w).rejects.toMatchObject({ code: 'UNAVAILABLE' });
    expect(l.snapshot).toMatchObject({ held: 700, waiting: 0 });
    a.release();
    expect(l.snapshot.held).toBe(0);
  });
});
