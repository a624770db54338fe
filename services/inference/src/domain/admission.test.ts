import { describe, expect, it } from 'vitest';
import { EMPTY_ADMISSION, arrive, expire, nextExpiry, release, withdraw, wouldReject, type AdmissionLimits, type AdmissionState, type Charge } from './admission.js';

const limits: AdmissionLimits = { maxConcurrency: 2, maxQueue: 2, queueTimeoutMs: 100, budgetBytes: Infinity };
const none: Charge = { door: 0, work: 0 };
const waiter = (id: number, enqueuedAt: number, charge: Charge = none) => ({ id, enqueuedAt, expiresAt: enqueuedAt + limits.queueTimeoutMs, charge });
const st = (running: number, queue: ReturnType<typeof waiter>[] = [], held = 0): AdmissionState => ({ running, held, queue });

describe('arrive by count', () => {
  it.each<[string, AdmissionState, string, number, number]>([
    ['idle → run', EMPTY_ADMISSION, 'run', 1, 0],
    ['one running → run', st(1), 'run', 2, 0],
    ['all slots busy → queue', st(2), 'queue', 2, 1],
    ['queue has room → queue', st(2, [waiter(1, 0)]), 'queue', 2, 2],
    ['queue full → reject', st(2, [waiter(1, 0), waiter(2, 0)]), 'reject', 2, 2],
    // A free slot with someone waiting (between a release and its hand-over) must not let a
    // newcomer overtake the queue.
    ['free slot but waiters → queue', st(1, [waiter(1, 0)]), 'queue', 1, 2],
  ])('%s', (_name, state, kind, running, queued) => {
    const t = arrive(state, limits, 9, 10);
    expect(t.decision.kind).toBe(kind);
    expect(t.state.running).toBe(running);
    expect(t.state.queue.length).toBe(queued);
    // The early check before any per-request work agrees with arrive, row by row.
    expect(wouldReject(state, limits)).toBe(kind === 'reject');
  });

  it('queues with the queue timeout from now', () => {
    expect(arrive(st(2), limits, 9, 10).decision).toEqual({ kind: 'queue', expiresAt: 110 });
  });
});

describe('arrive by cost (budget 100 bytes)', () => {
  const budget: AdmissionLimits = { ...limits, budgetBytes: 100 };
  it.each<[string, AdmissionState, Charge, string, number]>([
    ['fits an idle server → run, charged door + work', EMPTY_ADMISSION, { door: 10, work: 60 }, 'run', 70],
    ['exactly the budget → run', EMPTY_ADMISSION, { door: 40, work: 60 }, 'run', 100],
    ['could never fit → too_large, nothing held', EMPTY_ADMISSION, { door: 41, work: 60 }, 'too_large', 0],
    ['slot free but the work does not fit beside what runs → queue, holding its upload', st(1, [], 60), { door: 10, work: 40 }, 'queue', 70],
    ['slot free and it fits beside what runs → run', st(1, [], 50), { door: 10, work: 40 }, 'run', 100],
    ['not even its upload fits → OVERLOADED', st(1, [], 95), { door: 10, work: 10 }, 'reject', 95],
    ['queue full → OVERLOADED, whatever the memory', st(2, [waiter(1, 0), waiter(2, 0)], 0), { door: 1, work: 1 }, 'reject', 0],
  ])('%s', (_name, state, charge, kind, held) => {
    const t = arrive(state, budget, 9, 10, charge);
    expect(t.decision.kind).toBe(kind);
    expect(t.state.held).toBe(held);
    expect(wouldReject(state, budget, charge)).toBe(kind === 'reject');
  });

  it('the same rule serves a small pod and a big one: only the budget differs', () => {
    const big = { door: 30, work: 300 };
    expect(arrive(EMPTY_ADMISSION, { ...limits, budgetBytes: 100 }, 1, 0, big).decision.kind).toBe('too_large');
    expect(arrive(EMPTY_ADMISSION, { ...limits, budgetBytes: 400 }, 1, 0, big).decision.kind).toBe('run');
  });

  it('reports what was needed and what the budget is', () => {
    expect(arrive(EMPTY_ADMISSION, budget, 1, 0, { door: 50, work: 70 }).decision).toEqual({ kind: 'too_large', needed: 120, budget: 100 });
  });
});

describe('release', () => {
  it.each<[string, AdmissionState, number, number | undefined, number[], number, number]>([
    ['nobody waits → slot free', st(2), 50, undefined, [], 1, 0],
    ['head of the queue starts', st(2, [waiter(1, 0), waiter(2, 5)]), 50, 1, [], 2, 1],
    ['expired head is skipped, next starts', st(2, [waiter(1, 0), waiter(2, 60)]), 100, 2, [1], 2, 0],
    ['all expired → slot free', st(1, [waiter(1, 0), waiter(2, 1)]), 150, undefined, [1, 2], 0, 0],
  ])('%s', (_name, state, now, started, expired, running, queued) => {
    const t = release(state, limits, now);
    expect(t.decision.started[0]?.id).toBe(started);
    expect(t.decision.expired.map((w) => w.id)).toEqual(expired);
    expect(t.state.running).toBe(running);
    expect(t.state.queue.length).toBe(queued);
  });

  it('refuses to release more than ran or was held', () => {
    expect(() => release(EMPTY_ADMISSION, limits, 0)).toThrow(/without a running request/);
    expect(() => release(st(1, [], 10), limits, 0, { slot: true, bytes: 11 })).toThrow(/more bytes than held/);
  });

  describe('by cost (budget 100 bytes)', () => {
    const budget: AdmissionLimits = { ...limits, budgetBytes: 100 };
    // Two running requests hold 40 each; the queued one holds its upload of 20 and needs 30 more.
    const full = st(2, [waiter(7, 0, { door: 20, work: 30 })], 100);

    it.each<[string, { slot: boolean; bytes: number }, number[], number, number]>([
      ['slot and bytes back → the head starts, charged its work', { slot: true, bytes: 40 }, [7], 2, 90],
      ['only the slot back (abandoned work keeps its memory) → the head still does not fit', { slot: true, bytes: 0 }, [], 1, 100],
      ['only the bytes back (the abandoned decode ended) → no slot, nobody starts', { slot: false, bytes: 40 }, [], 2, 60],
    ])('%s', (_name, freed, started, running, held) => {
      const t = release(full, budget, 10, freed);
      expect(t.decision.started.map((w) => w.id)).toEqual(started);
      expect(t.state.running).toBe(running);
      expect(t.state.held).toBe(held);
    });

    it.each<[string, number, number[], number]>([
      ['a big request leaves: several waiters start at once, in order', 60, [1, 2, 3], 100],
      ['a waiter that does not fit blocks the smaller ones behind it (no overtaking)', 70, [1], 35],
    ])('%s', (_name, secondWork, started, held) => {
      // One request of 80 runs; three uploads of 5 wait (95 held).
      const s = st(1, [waiter(1, 0, { door: 5, work: 20 }), waiter(2, 0, { door: 5, work: secondWork }), waiter(3, 0, { door: 5, work: 5 })], 95);
      const t = release(s, { ...budget, maxConcurrency: 3 }, 10, { slot: true, bytes: 80 });
      expect(t.decision.started.map((w) => w.id)).toEqual(started);
      expect(t.state.held).toBe(held);
    });
  });
});

describe('expire / withdraw / nextExpiry', () => {
  const state: AdmissionState = st(2, [waiter(1, 0, { door: 3, work: 9 }), waiter(2, 30, { door: 4, work: 9 })], 50);

  it.each<[number, number[], number, number]>([
    [99, [], 2, 50],
    [100, [1], 1, 47],
    [130, [1, 2], 0, 43],
  ])('at %i expires %j, freeing their uploads', (now, ids, left, held) => {
    const t = expire(state, now);
    expect(t.decision.map((w) => w.id)).toEqual(ids);
    expect(t.state.queue.length).toBe(left);
    expect(t.state.running).toBe(2);
    expect(t.state.held).toBe(held);
  });

  it.each<[number, boolean, number, number]>([
    [2, true, 1, 46],
    [7, false, 2, 50],
  ])('withdraw %i → %s', (id, removed, left, held) => {
    const t = withdraw(state, id);
    expect(t.decision).toBe(removed);
    expect(t.state.queue.length).toBe(left);
    expect(t.state.held).toBe(held);
  });

  it('wakes at the earliest expiry', () => {
    expect(nextExpiry(state)).toBe(100);
    expect(nextExpiry(EMPTY_ADMISSION)).toBeUndefined();
  });

  it('never runs more than maxConcurrency nor holds more than the budget over a random sequence of events', () => {
    const budget: AdmissionLimits = { ...limits, budgetBytes: 1000 };
    let s: AdmissionState = EMPTY_ADMISSION;
    const running: Charge[] = [];
    let seed = 42;
    const rnd = (): number => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
    for (let now = 0; now < 3000; now++) {
      const r = rnd();
      if (r < 0.5) {
        const charge = { door: Math.floor(rnd() * 100), work: Math.floor(rnd() * 600) };
        const t = arrive(s, budget, now, now, charge);
        s = t.state;
        if (t.decision.kind === 'run') running.push(charge);
      } else if (r < 0.8 && running.length > 0) {
        const c = running.shift()!;
        const t = release(s, budget, now, { slot: true, bytes: c.door + c.work });
        s = t.state;
        running.push(...t.decision.started.map((w) => w.charge));
      } else s = expire(s, now).state;
      expect(s.running).toBe(running.length);
      expect(s.running).toBeLessThanOrEqual(budget.maxConcurrency);
      expect(s.queue.length).toBeLessThanOrEqual(budget.maxQueue);
      expect(s.held).toBeLessThanOrEqual(budget.budgetBytes);
      expect(s.held).toBe(running.reduce((a, c) => a + c.door + c.work, 0) + s.queue.reduce((a, w) => a + w.charge.door, 0));
    }
  });
});
