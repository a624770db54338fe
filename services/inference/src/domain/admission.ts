// Admission control as pure state transitions (docs/architecture.md#memory-and-admission-by-cost): at most `maxConcurrency`
// requests run at once, at most `maxQueue` wait, and none waits longer than `queueTimeoutMs`.
// A request that timed out in the queue is rejected and never runs later. Clients take turns: a
// freed slot goes to the oldest waiter of the client with the fewest requests running, so that
// one client's burst cannot make everyone else's requests wait behind all of it. The async
// adapter (adapters/admission-gate.ts) owns promises and timers; everything here takes `now`.

export interface AdmissionLimits {
  readonly maxConcurrency: number;
  readonly maxQueue: number;
  readonly queueTimeoutMs: number;
}

export interface Waiter {
  readonly id: number;
  readonly enqueuedAt: number;
  readonly expiresAt: number;
  /** Whose request (@segserve/runtime client-identity); absent = the anonymous client. */
  readonly client?: string;
}

export interface AdmissionState {
  readonly running: number;
  /** In arrival order; the next to run is chosen by `nextWaiter`. */
  readonly queue: readonly Waiter[];
  /** Requests running per client (absent: none has a client, or nothing runs). */
  readonly runningBy?: Readonly<Record<string, number>>;
}

const ANONYMOUS = '';

function withRunning(state: AdmissionState, client: string | undefined, delta: number): Readonly<Record<string, number>> {
  const key = client ?? ANONYMOUS;
  const by = { ...state.runningBy };
  const n = (by[key] ?? 0) + delta;
  if (n > 0) by[key] = n;
  else delete by[key];
  return by;
}

/** The waiter a freed slot goes to: the oldest of the client with the fewest running. */
export function nextWaiter(state: AdmissionState): Waiter | undefined {
  let best: Waiter | undefined;
  let fewest = Infinity;
  for (const w of state.queue) {
    const n = state.runningBy?.[w.client ?? ANONYMOUS] ?? 0;
    if (n < fewest) {
      best = w;
      fewest = n;
    }
  }
  return best;
}

export type ArriveDecision =
  | { readonly kind: 'run' }
  | { readonly kind: 'queue'; readonly expiresAt: number }
  | { readonly kind: 'reject'; readonly reason: 'queue_full' };

export interface Transition<D> {
  readonly state: AdmissionState;
  readonly decision: D;
}

export interface ReleaseDecision {
  /** The waiter that now holds the freed slot, if any. */
  readonly started: Waiter | undefined;
  /** Waiters found past their queue timeout on the way (rejected, never run). */
  readonly expired: readonly Waiter[];
}

export const EMPTY_ADMISSION: AdmissionState = Object.freeze({ running: 0, queue: Object.freeze([]) });

/** Nobody may overtake a waiter: a newcomer runs directly only when the queue is empty. */
function canRunNow(state: AdmissionState, limits: AdmissionLimits): boolean {
  return state.running < limits.maxConcurrency && state.queue.length === 0;
}

/**
 * Whether a request arriving now would be refused. Asked before any per-request work (reading
 * the image header), so that the excess of a burst is answered without queueing behind the
 * decodes of the admitted requests.
 */
export function wouldReject(state: AdmissionState, limits: AdmissionLimits): boolean {
  return !canRunNow(state, limits) && state.queue.length >= limits.maxQueue;
}

/**
 * Whether a call whose message is still arriving must be refused now: running, queued and
 * arriving calls together already take every place (slots + queue). Asked by the gRPC edge at a
 * message's first bytes, so that the excess of a burst is answered while its bytes are still on
 * the wire, not after all of them have been received.
 */
export function wouldRefuseArrival(state: AdmissionState, limits: AdmissionLimits, arriving: number): boolean {
  return state.running + state.queue.length + arriving >= limits.maxConcurrency + limits.maxQueue;
}

export function arrive(state: AdmissionState, limits: AdmissionLimits, id: number, now: number, client?: string): Transition<ArriveDecision> {
  if (canRunNow(state, limits)) {
    return { state: { ...state, running: state.running + 1, runningBy: withRunning(state, client, 1) }, decision: { kind: 'run' } };
  }
  if (wouldReject(state, limits)) {
    return { state, decision: { kind: 'reject', reason: 'queue_full' } };
  }
  const waiter: Waiter = { id, enqueuedAt: now, expiresAt: now + limits.queueTimeoutMs, ...(client === undefined ? {} : { client }) };
  return { state: { ...state, queue: [...state.queue, waiter] }, decision: { kind: 'queue', expiresAt: waiter.expiresAt } };
}

/** Removes waiters whose queue timeout has passed (`expiresAt <= now`). */
export function expire(state: AdmissionState, now: number): Transition<readonly Waiter[]> {
  const expired = state.queue.filter((w) => w.expiresAt <= now);
  if (expired.length === 0) return { state, decision: [] };
  return { state: { ...state, queue: state.queue.filter((w) => w.expiresAt > now) }, decision: expired };
}

/**
 * A running request of `client` finished (or was cancelled): its slot goes to the next live
 * waiter (`nextWaiter`: the oldest of the client with the fewest running).
 */
export function release(state: AdmissionState, limits: AdmissionLimits, now: number, client?: string): Transition<ReleaseDecision> {
  if (state.running <= 0) throw new Error('admission: release without a running request');
  const afterExpiry = expire(state, now);
  const freed: AdmissionState = { ...afterExpiry.state, running: afterExpiry.state.running - 1, runningBy: withRunning(afterExpiry.state, client, -1) };
  const next = nextWaiter(freed);
  if (next !== undefined && freed.running < limits.maxConcurrency) {
    const started: AdmissionState = { running: freed.running + 1, queue: freed.queue.filter((w) => w !== next), runningBy: withRunning(freed, next.client, 1) };
    return { state: started, decision: { started: next, expired: afterExpiry.decision } };
  }
  return { state: freed, decision: { started: undefined, expired: afterExpiry.decision } };
}

/** A queued request went away (client cancel or deadline) before it ran. */
export function withdraw(state: AdmissionState, id: number): Transition<boolean> {
  const queue = state.queue.filter((w) => w.id !== id);
  if (queue.length === state.queue.length) return { state, decision: false };
  return { state: { ...state, queue }, decision: true };
}

/** When the adapter must next wake up to expire waiters, if anyone waits. */
export function nextExpiry(state: AdmissionState): number | undefined {
  let next: number | undefined;
  for (const w of state.queue) if (next === undefined || w.expiresAt < next) next = w.expiresAt;
  return next;
}
