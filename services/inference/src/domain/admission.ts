// Admission control as pure state transitions (docs/architecture.md, "Admission"): at most
// `maxConcurrency` requests run at once, at most `maxQueue` wait, none waits longer than
// `queueTimeoutMs`, and the bytes every admitted request holds stay within `budgetBytes`
// (issue 11: admission by cost). A request is charged its compressed bytes from the moment it
// arrives (`door`, queued or not) and what decoding, the model's input and the mask will hold
// once it runs (`work`). One that could never fit is refused as too large; one that cannot fit
// now waits in the queue like one that finds every slot busy. A request that timed out in the
// queue is rejected and never runs later. The async adapter (adapters/admission-gate.ts) owns
// promises and timers; everything here takes `now`.

export interface AdmissionLimits {
  readonly maxConcurrency: number;
  readonly maxQueue: number;
  readonly queueTimeoutMs: number;
  /** Bytes admitted requests may hold at once; Infinity when no budget is known. */
  readonly budgetBytes: number;
}

/** What a request holds: its upload from arrival, its working memory while it runs. */
export interface Charge {
  readonly door: number;
  readonly work: number;
}

export const NO_CHARGE: Charge = Object.freeze({ door: 0, work: 0 });

export interface Waiter {
  readonly id: number;
  readonly enqueuedAt: number;
  readonly expiresAt: number;
  readonly charge: Charge;
}

export interface AdmissionState {
  readonly running: number;
  /** Bytes charged to running and queued requests, and to abandoned work still under way. */
  readonly held: number;
  /** FIFO: the head is the next to run. */
  readonly queue: readonly Waiter[];
}

export type ArriveDecision =
  | { readonly kind: 'run' }
  | { readonly kind: 'queue'; readonly expiresAt: number }
  | { readonly kind: 'reject'; readonly reason: 'queue_full' | 'no_memory' }
  | { readonly kind: 'too_large'; readonly needed: number; readonly budget: number };

export interface Transition<D> {
  readonly state: AdmissionState;
  readonly decision: D;
}

export interface ReleaseDecision {
  /** The waiters that now run (the head first), in queue order. */
  readonly started: readonly Waiter[];
  /** Waiters found past their queue timeout on the way (rejected, never run). */
  readonly expired: readonly Waiter[];
}

export const EMPTY_ADMISSION: AdmissionState = Object.freeze({ running: 0, held: 0, queue: Object.freeze([]) });

const total = (c: Charge): number => c.door + c.work;

/** A slot is free, nobody waits (no overtaking), and the work fits beside what is held. */
function canRunNow(state: AdmissionState, limits: AdmissionLimits, charge: Charge): boolean {
  return state.running < limits.maxConcurrency && state.queue.length === 0 && state.held + total(charge) <= limits.budgetBytes;
}

/**
 * Whether a request arriving now with `charge` would be refused (queue full, or not even its
 * upload fits). Asked before work a refusal would waste; agrees with arrive().
 */
export function wouldReject(state: AdmissionState, limits: AdmissionLimits, charge: Charge = NO_CHARGE): boolean {
  if (total(charge) > limits.budgetBytes || canRunNow(state, limits, charge)) return false;
  return state.queue.length >= limits.maxQueue || state.held + charge.door > limits.budgetBytes;
}

export function arrive(state: AdmissionState, limits: AdmissionLimits, id: number, now: number, charge: Charge = NO_CHARGE): Transition<ArriveDecision> {
  const needed = total(charge);
  if (needed > limits.budgetBytes) return { state, decision: { kind: 'too_large', needed, budget: limits.budgetBytes } };
  if (canRunNow(state, limits, charge)) {
    return { state: { ...state, running: state.running + 1, held: state.held + needed }, decision: { kind: 'run' } };
  }
  if (state.queue.length >= limits.maxQueue) return { state, decision: { kind: 'reject', reason: 'queue_full' } };
  if (state.held + charge.door > limits.budgetBytes) return { state, decision: { kind: 'reject', reason: 'no_memory' } };
  const waiter: Waiter = { id, enqueuedAt: now, expiresAt: now + limits.queueTimeoutMs, charge };
  return { state: { ...state, held: state.held + charge.door, queue: [...state.queue, waiter] }, decision: { kind: 'queue', expiresAt: waiter.expiresAt } };
}

/** Removes waiters whose queue timeout has passed (`expiresAt <= now`), with their uploads. */
export function expire(state: AdmissionState, now: number): Transition<readonly Waiter[]> {
  const expired = state.queue.filter((w) => w.expiresAt <= now);
  if (expired.length === 0) return { state, decision: [] };
  const freed = expired.reduce((a, w) => a + w.charge.door, 0);
  return { state: { ...state, held: state.held - freed, queue: state.queue.filter((w) => w.expiresAt > now) }, decision: expired };
}

/** Starts waiters from the head while a slot is free and the head's work fits. */
function startWaiters(state: AdmissionState, limits: AdmissionLimits): Transition<readonly Waiter[]> {
  let { running, held } = state;
  let i = 0;
  for (; i < state.queue.length; i++) {
    const w = state.queue[i]!;
    if (running >= limits.maxConcurrency || held + w.charge.work > limits.budgetBytes) break;
    running++;
    held += w.charge.work;
  }
  if (i === 0) return { state, decision: [] };
  return { state: { running, held, queue: state.queue.slice(i) }, decision: state.queue.slice(0, i) };
}

/** What a release gives back; `{ slot: false, bytes: 0 }` only re-checks the queue (new budget, withdrawal). */
export interface Freed {
  readonly slot: boolean;
  readonly bytes: number;
}

/**
 * A running request gave back its slot and/or its bytes. The two may come apart: a request
 * whose client went away frees its slot at once, while the decode or run it started (which
 * cannot be interrupted) keeps its memory until it really ends. Waiters start in order.
 */
export function release(state: AdmissionState, limits: AdmissionLimits, now: number, freed: Freed = { slot: true, bytes: 0 }): Transition<ReleaseDecision> {
  if (freed.slot && state.running <= 0) throw new Error('admission: release without a running request');
  if (freed.bytes > state.held) throw new Error('admission: release of more bytes than held');
  const afterExpiry = expire(state, now);
  const s = afterExpiry.state;
  const started = startWaiters({ ...s, running: s.running - (freed.slot ? 1 : 0), held: s.held - freed.bytes }, limits);
  return { state: started.state, decision: { started: started.decision, expired: afterExpiry.decision } };
}

/** A queued request went away (client cancel or deadline) before it ran. */
export function withdraw(state: AdmissionState, id: number): Transition<boolean> {
  const w = state.queue.find((x) => x.id === id);
  if (!w) return { state, decision: false };
  return { state: { ...state, held: state.held - w.charge.door, queue: state.queue.filter((x) => x !== w) }, decision: true };
}

/** When the adapter must next wake up to expire waiters, if anyone waits. */
export function nextExpiry(state: AdmissionState): number | undefined {
  let next: number | undefined;
  for (const w of state.queue) if (next === undefined || w.expiresAt < next) next = w.expiresAt;
  return next;
}
