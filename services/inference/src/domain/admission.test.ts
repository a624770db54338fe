import { describe, expect, it } from 'vitest';
import { EMPTY_ADMISSION, arrive, expire, nextExpiry, nextWaiter, release, withdraw, wouldRefuseArrival, wouldReject, type AdmissionState } from './admission.js';

const limits = { maxConcurrency: 2, maxQueue: 2, queueTimeoutMs: 100 };
const waiter = (id: number, enqueuedAt: number) => ({ id, enqueuedAt, expiresAt: enqueuedAt + limits.queueTimeoutMs });

describe('arrive', () => {
  it.each<[string, AdmissionState, string, number, number]>([
    ['idle → run', EMPTY_ADMISSION, 'run', 1, 0],
    ['one running → run', { running: 1, queue: [] }, 'run', 2, 0],
    ['all slots busy → queue', { running: 2, queue: [] }, 'queue', 2, 1],
    ['queue has room → queue', { running: 2, queue: [waiter(1, 0)] }, 'queue', 2, 2],
    ['queue full → reject', { running: 2, queue: [waiter(1, 0), waiter(2, 0)] }, 'reject', 2, 2],
    // A free slot with someone waiting (between a release and its hand-over) must not let a
    // newcomer overtake the queue.
    ['free slot but waiters → queue', { running: 1, queue: [waiter(1, 0)] }, 'queue', 1, 2],
  ])('%s', (_name, state, kind, running, queued) => {
    const t = arrive(state, limits, 9, 10);
    expect(t.decision.kind).toBe(kind);
    expect(t.state.running).toBe(running);
    expect(t.state.queue.length).toBe(queued);
    // The early check before any per-request work agrees with arrive, row by row.
    expect(wouldReject(state, limits)).toBe(kind === 'reject');
  });

  it.each<[string, { maxConcurrency: number; maxQueue: number }, AdmissionState, boolean]>([
    ['no queue, slot free', { maxConcurrency: 1, maxQueue: 0 }, EMPTY_ADMISSION, false],
    ['no queue, slot busy', { maxConcurrency: 1, maxQueue: 0 }, { running: 1, queue: [] }, true],
    ['queue of one, empty', { maxConcurrency: 1, maxQueue: 1 }, { running: 1, queue: [] }, false],
    ['queue of one, taken', { maxConcurrency: 1, maxQueue: 1 }, { running: 1, queue: [waiter(1, 0)] }, true],
  ])('wouldReject: %s', (_name, l, state, expected) => {
    expect(wouldReject(state, { ...l, queueTimeoutMs: 100 })).toBe(expected);
    expect(arrive(state, { ...l, queueTimeoutMs: 100 }, 9, 10).decision.kind === 'reject').toBe(expected);
  });

  it('queues with the queue timeout from now', () => {
    expect(arrive({ running: 2, queue: [] }, limits, 9, 10).decision).toEqual({ kind: 'queue', expiresAt: 110 });
  });
});

describe('wouldRefuseArrival', () => {
  it.each<[string, AdmissionState, number, boolean]>([
    ['idle, nothing arriving', EMPTY_ADMISSION, 0, false],
    ['idle, three arriving (4 places)', EMPTY_ADMISSION, 3, false],
    ['idle, four arriving: every place is spoken for', EMPTY_ADMISSION, 4, true],
    ['two running, one queued, none arriving', { running: 2, queue: [waiter(1, 0)] }, 0, false],
    ['two running, one queued, one arriving', { running: 2, queue: [waiter(1, 0)] }, 1, true],
    ['queue full', { running: 2, queue: [waiter(1, 0), waiter(2, 0)] }, 0, true],
  ])('%s → %s', (_name, state, arriving, refused) => {
    expect(wouldRefuseArrival(state, limits, arriving)).toBe(refused);
  });
});

describe('release', () => {
  it.each<[string, AdmissionState, number, number | undefined, number[], number, number]>([
    ['nobody waits → slot free', { running: 2, queue: [] }, 50, undefined, [], 1, 0],
    ['head of the queue starts', { running: 2, queue: [waiter(1, 0), waiter(2, 5)] }, 50, 1, [], 2, 1],
    ['expired head is skipped, next starts', { running: 2, queue: [waiter(1, 0), waiter(2, 60)] }, 100, 2, [1], 2, 0],
    ['all expired → slot free', { running: 1, queue: [waiter(1, 0), waiter(2, 1)] }, 150, undefined, [1, 2], 0, 0],
  ])('%s', (_name, state, now, started, expired, running, queued) => {
    const t = release(state, limits, now);
    expect(t.decision.started?.id).toBe(started);
    expect(t.decision.expired.map((w) => w.id)).toEqual(expired);
    expect(t.state.running).toBe(running);
    expect(t.state.queue.length).toBe(queued);
  });

  describe('clients take turns', () => {
    const w = (id: number, client: string | undefined, enqueuedAt = id) => ({ ...waiter(id, enqueuedAt), ...(client === undefined ? {} : { client }) });
    it.each<[string, AdmissionState, string | undefined, number | undefined, Record<string, number>]>([
      ['one client: first come, first served', { running: 2, queue: [w(1, 'a'), w(2, 'a')], runningBy: { a: 2 } }, 'a', 1, { a: 2 }],
      [
        "a client with nothing running goes before another's older waiters",
        { running: 2, queue: [w(1, 'flood'), w(2, 'flood'), w(3, 'other')], runningBy: { flood: 2 } },
        'flood',
        3,
        { flood: 1, other: 1 },
      ],
      [
        'fewest running wins; among equals, the oldest',
        { running: 2, queue: [w(1, 'a'), w(2, 'b'), w(3, 'c')], runningBy: { a: 1, b: 1 } },
        'a',
        1,
        { a: 1, b: 1 },
      ],
      ['requests without a client are one client', { running: 2, queue: [w(1, undefined), w(2, 'x')], runningBy: { '': 2 } }, undefined, 2, { '': 1, x: 1 }],
      ['no waiter: the slot is free', { running: 1, queue: [], runningBy: { a: 1 } }, 'a', undefined, {}],
    ])('%s', (_name, state, releasing, started, runningBy) => {
      const t = release(state, limits, 5, releasing);
      expect(t.decision.started?.id).toBe(started);
      expect(t.state.runningBy).toEqual(runningBy);
      expect(t.state.running).toBe(Object.values(runningBy).reduce((a, b) => a + b, 0));
    });

    it('arrive counts a running request for its client', () => {
      const one = arrive(EMPTY_ADMISSION, limits, 1, 0, 'a').state;
      const two = arrive(one, limits, 2, 0, 'b').state;
      expect(two.runningBy).toEqual({ a: 1, b: 1 });
      const queued = arrive(two, limits, 3, 0, 'a');
      expect(queued.state.queue).toEqual([{ ...waiter(3, 0), client: 'a' }]);
      expect(nextWaiter(queued.state)?.id).toBe(3);
    });
  });

  it('refuses to release more than ran', () => {
    expect(() => release(EMPTY_ADMISSION, limits, 0)).toThrow(/without a running request/);
  });
});

describe('expire / withdraw / nextExpiry', () => {
  const state: AdmissionState = { running: 2, queue: [waiter(1, 0), waiter(2, 30)] };

  it.each<[number, number[], number]>([
    [99, [], 2],
    [100, [1], 1],
    [130, [1, 2], 0],
  ])('at %i expires %j', (now, ids, left) => {
    const t = expire(state, now);
    expect(t.decision.map((w) => w.id)).toEqual(ids);
    expect(t.state.queue.length).toBe(left);
    expect(t.state.running).toBe(2);
  });

  it.each<[number, boolean, number]>([
    [2, true, 1],
    [7, false, 2],
  ])('withdraw %i → %s', (id, removed, left) => {
    const t = withdraw(state, id);
    expect(t.decision).toBe(removed);
    expect(t.state.queue.length).toBe(left);
  });

  it('wakes at the earliest expiry', () => {
    expect(nextExpiry(state)).toBe(100);
    expect(nextExpiry(EMPTY_ADMISSION)).toBeUndefined();
  });

  it('never runs more than maxConcurrency over a random sequence of events', () => {
    let s: AdmissionState = EMPTY_ADMISSION;
    let seed = 42;
    const rnd = (): number => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    for (let now = 0; now < 2000; now++) {
      const r = rnd();
      if (r < 0.5) s = arrive(s, limits, now, now).state;
      else if (r < 0.8 && s.running > 0) s = release(s, limits, now).state;
      else s = expire(s, now).state;
      expect(s.running).toBeLessThanOrEqual(limits.maxConcurrency);
      expect(s.queue.length).toBeLessThanOrEqual(limits.maxQueue);
    }
  });
});
