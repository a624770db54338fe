import { describe, expect, it } from 'vitest';
import { chargeCeiling, decideCharge, defaultChargePolicy, headroomBytes, LARGE_AT_ONCE, MIN_HEADROOM_BYTES, requestBudgetBytes, type ChargePolicy, type LedgerState } from './memory-budget.js';
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

describe('headroomBytes', () => {
  it.each([
    ['a 512 MiB pod: the minimum, above 10 %', 512 * MiB, 0.1, MIN_HEADROOM_BYTES],
    ['a 2 GiB pod: 10 %', 2048 * MiB, 0.1, 204.8 * MiB],
    ['a 200 MiB test pod: a quarter', 200 * MiB, 0.1, 50 * MiB],
    ['a large fraction wins', 512 * MiB, 0.5, 256 * MiB],
  ] as const)('%s', (_name, limit, fraction, expected) => {
    expect(headroomBytes(limit, fraction)).toBeCloseTo(expected, 0);
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

  describe('a client share', () => {
    const shared: ChargePolicy = { ...policy, clientShare: 0.5 };
    it.each([
      ['no client: the share does not apply', state(0), 600, 0, undefined, 'admit'],
      ['a client, idle', state(0), 400, 0, 0, 'admit'],
      ['a client at its share exactly', state(300, 300), 200, 0, 300, 'admit'],
      ['a client one byte over its share: waits, others still get room', state(300, 300), 201, 0, 300, 'wait'],
      ['another client beside it', state(500, 500), 200, 0, 0, 'admit'],
      ['one charge above the share: never fits for a client', state(0), 501, 0, 0, 'never'],
      ['the same charge without a client fits', state(0), 501, 0, undefined, 'admit'],
      ['grow within the share (its own bytes counted once)', state(450, 450), 50, 450, 450, 'admit'],
      ['grow past the share while the client holds more', state(450, 450), 51, 200, 450, 'wait'],
      ['within the share but the budget is full', state(990, 0), 20, 0, 0, 'wait'],
    ] as const)('%s → %s', (_name, s, bytes, holding, clientHeld, kind) => {
      expect(decideCharge(s, { bytes, holding, ...(clientHeld === undefined ? {} : { clientHeld }) }, shared).kind).toBe(kind);
    });

    it('names the client share as the ceiling', () => {
      expect(decideCharge(state(0), { bytes: 600, clientHeld: 0 }, shared)).toEqual({ kind: 'never', ceiling: 500 });
      expect(chargeCeiling(1000, shared, 50, true)).toBe(500);
      expect(chargeCeiling(1000, shared, 50)).toBe(1000);
    });
  });

  describe('large charges at once', () => {
    const counted: ChargePolicy = { ...policy, largeAtOnce: 2 };
    const withCount = (held: number, heldLarge: number, largeCount: number): LedgerState => ({ capacity: 1000, held, heldLarge, largeCount });
    it.each([
      ['large, none held', withCount(0, 0, 0), 200, 0, 'admit'],
      ['large, one held', withCount(200, 200, 1), 200, 0, 'admit'],
      ['large, two held: waits although the share has room', withCount(400, 400, 2), 200, 0, 'wait'],
      ['small beside two large', withCount(400, 400, 2), 50, 0, 'admit'],
      ['a large one grows: keeps its own place', withCount(400, 400, 2), 50, 200, 'admit'],
      ['a small one grows large: takes a place, none left', withCount(450, 400, 2), 60, 50, 'wait'],
      ['a small one grows large: one place left', withCount(250, 200, 1), 60, 50, 'admit'],
      ['no count in the state: none held', state(0), 200, 0, 'admit'],
    ] as const)('%s → %s', (_name, s, bytes, holding, kind) => {
      expect(decideCharge(s, { bytes, holding }, counted).kind).toBe(kind);
    });

    it('none at once: a large charge never fits, a small one does', () => {
      const none: ChargePolicy = { ...policy, largeAtOnce: 0 };
      expect(decideCharge(state(0), { bytes: 200 }, none)).toEqual({ kind: 'never', ceiling: 100 });
      expect(decideCharge(state(0), { bytes: 100 }, none).kind).toBe('admit');
    });
  });

  it('names the most one charge may hold when it refuses', () => {
    expect(decideCharge(state(0), { bytes: 900 }, policy)).toEqual({ kind: 'never', ceiling: 750 });
    expect(chargeCeiling(1000, policy, 50)).toBe(1000);
  });
});

describe('defaultChargePolicy', () => {
  // The gateway of a 512 MiB pod: about 320 MiB of budget; 26 MB uploads are large, photographs are not.
  const capacity = 320 * MiB;
  const policy = defaultChargePolicy(capacity);
  const big = 26_000_000;
  const held = (large: number, small = 0): LedgerState => ({ capacity, held: large * big + small, heldLarge: large * big, largeCount: large });
  it.each([
    ['the first 26 MB upload', held(0), big, 'admit'],
    ['a second waits, though the budget and the large share have room for it', held(1), big, 'wait'],
    ['a photograph beside a 26 MB upload', held(1, 5_000_000), 300_000, 'admit'],
    ['the largest upload alone', held(0), 32 * MiB - 4096, 'admit'],
  ] as const)('%s → %s', (_name, state, bytes, kind) => {
    expect(decideCharge(state, { bytes, clientHeld: 0 }, policy).kind).toBe(kind);
  });

  it('large above 1/16, half the budget and one at a time for large charges, three quarters per client', () => {
    expect(policy).toEqual({ largeBytes: capacity / 16, largeShare: 0.5, clientShare: 0.75, largeAtOnce: LARGE_AT_ONCE });
    expect(LARGE_AT_ONCE).toBe(1);
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

  it('onWait is called once when a charge starts to wait, not when it is admitted or refused at once', async () => {
    const l = ledger(1000, 1);
    const waits: string[] = [];
    const a = await l.charge(500, { waitMs: 10_000, onWait: () => waits.push('admitted') });
    const waiting = l.charge(700, { waitMs: 10_000, onWait: () => waits.push('waits') });
    await expect(l.charge(700, { waitMs: 10_000, onWait: () => waits.push('queue full') })).rejects.toMatchObject({ code: 'OVERLOADED' });
    await expect(l.charge(700, { waitMs: 0, onWait: () => waits.push('no wait') })).rejects.toMatchObject({ code: 'OVERLOADED' });
    expect(waits).toEqual(['waits']);
    a.release();
    (await waiting).release();
    expect(waits).toEqual(['waits']);
  });

  it('a large charge queues behind a large waiter even when it would fit', async () => {
    const l = ledger();
    const a = l.tryCharge(500);
    const waiting = l.charge(700, { waitMs: 10_000 });
    await expect(l.charge(200, { waitMs: 0 })).rejects.toMatchObject({ code: 'OVERLOADED' });
    a.release();
    (await waiting).release();
  });

  it("one client's charges stop at its share; another client's still fit, and a release wakes the first", async () => {
    const l = new MemoryLedger({ capacityBytes: 1000, maxWaiting: 4, policy: { largeBytes: 100, largeShare: 0.75, clientShare: 0.5 } });
    const flood = [l.tryCharge(200, 'a'), l.tryCharge(200, 'a')];
    expect(code(() => l.tryCharge(200, 'a'))).toBe('OVERLOADED');
    const waiting = l.charge(150, { waitMs: 10_000, client: 'a' });
    const other = l.tryCharge(90, 'b');
    const stranger = await l.charge(90, { waitMs: 0 });
    expect(l.heldBy('a')).toBe(400);
    expect(l.snapshot).toMatchObject({ held: 580, waiting: 1 });
    flood[0]!.release();
    const woken = await waiting;
    expect(l.heldBy('a')).toBe(350);
    for (const c of [flood[1]!, woken, other, stranger]) c.release();
    expect(l.heldBy('a')).toBe(0);
    expect(l.snapshot).toMatchObject({ held: 0, heldLarge: 0, waiting: 0 });
  });

  it('holds at most largeAtOnce large charges; the next waits for one to end, small ones pass', async () => {
    const l = new MemoryLedger({ capacityBytes: 1000, maxWaiting: 4, policy: { largeBytes: 100, largeShare: 0.75, largeAtOnce: 2 } });
    const two = [l.tryCharge(150), l.tryCharge(150)];
    expect(l.snapshot).toMatchObject({ held: 300, heldLarge: 300, largeCount: 2 });
    expect(code(() => l.tryCharge(150))).toBe('OVERLOADED');
    const grown = l.tryCharge(80);
    expect(code(() => grown.grow(40))).toBe('OVERLOADED');
    const third = l.charge(150, { waitMs: 10_000 });
    const small = l.tryCharge(50);
    expect(l.snapshot).toMatchObject({ held: 430, largeCount: 2, waiting: 1 });
    two[0]!.release();
    const woken = await third;
    expect(l.snapshot).toMatchObject({ held: 430, heldLarge: 300, largeCount: 2, waiting: 0 });
    for (const c of [two[1]!, woken, grown, small]) c.release();
    expect(l.snapshot).toMatchObject({ held: 0, heldLarge: 0, largeCount: 0 });
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
