// The async side of admission control: promises, one timer and abort signals around the pure
// transitions of domain/admission.ts. acquire() resolves with a permit when a slot is free and
// the request's charge fits the memory budget, rejects at once with TOO_LARGE when it never
// could, with OVERLOADED when the queue is full, with OVERLOADED when the queue timeout passes
// (the request is then never run), and with the signal's reason when the caller goes away
// while waiting. A permit gives back its slot and its bytes separately (abandoned work keeps
// its memory until it really ends); release() gives back both, each at most once.

import { SegserveError } from '@segserve/proto';
import {
  EMPTY_ADMISSION,
  NO_CHARGE,
  arrive,
  expire,
  nextExpiry,
  release,
  withdraw,
  wouldReject,
  type AdmissionLimits,
  type AdmissionState,
  type Charge,
  type Freed,
  type Waiter,
} from '../domain/admission.js';

export interface Permit {
  /** The concurrency slot: given back as soon as the request is answered or abandoned. */
  releaseSlot(): void;
  /** The memory charge: given back when the work the request started has really ended. */
  releaseBytes(): void;
  release(): void;
}

export interface AdmissionSnapshot {
  readonly running: number;
  readonly queued: number;
  readonly heldBytes: number;
}

interface Pending {
  readonly charge: Charge;
  readonly resolve: (p: Permit) => void;
  readonly reject: (err: unknown) => void;
  readonly cleanup: () => void;
}

const MIB = 2 ** 20;
const mib = (bytes: number): string => `${(bytes / MIB).toFixed(1)} MiB`;

export class AdmissionGate {
  #limits: AdmissionLimits;
  readonly #now: () => number;
  readonly #onChange: ((s: AdmissionSnapshot) => void) | undefined;
  readonly #pending = new Map<number, Pending>();
  readonly #idleWaiters: (() => void)[] = [];
  #state: AdmissionState = EMPTY_ADMISSION;
  #nextId = 1;
  #timer: NodeJS.Timeout | undefined;
  #timerAt: number | undefined;

  constructor(limits: Omit<AdmissionLimits, 'budgetBytes'> & { budgetBytes?: number }, options: { now?: () => number; onChange?: (s: AdmissionSnapshot) => void } = {}) {
    this.#limits = { budgetBytes: Infinity, ...limits };
    this.#now = options.now ?? (() => performance.now());
    this.#onChange = options.onChange;
  }

  get limits(): AdmissionLimits {
    return this.#limits;
  }

  get snapshot(): AdmissionSnapshot {
    return { running: this.#state.running, queued: this.#state.queue.length, heldBytes: this.#state.held };
  }

  /** The memory budget, known once the model is loaded and the baseline measured. */
  setBudget(bytes: number): void {
    this.#limits = { ...this.#limits, budgetBytes: bytes };
    this.#apply({ slot: false, bytes: 0 });
  }

  /** Throws OVERLOADED when acquire() would refuse now; call it before work a refusal would waste. */
  refuseIfFull(charge: Charge = NO_CHARGE): void {
    if (wouldReject(this.#state, this.#limits, charge)) throw this.#overloaded(this.#state.queue.length >= this.#limits.maxQueue ? 'queue_full' : 'no_memory');
  }

  #overloaded(reason: 'queue_full' | 'no_memory'): SegserveError {
    const l = this.#limits;
    return reason === 'queue_full'
      ? new SegserveError('OVERLOADED', `overloaded: ${l.maxConcurrency} running and ${l.maxQueue} queued`)
      : new SegserveError('OVERLOADED', `overloaded: ${mib(this.#state.held)} of the ${mib(l.budgetBytes)} memory budget in use`);
  }

  acquire(signal?: AbortSignal, charge: Charge = NO_CHARGE): Promise<Permit> {
    if (signal?.aborted) return Promise.reject(signal.reason as Error);
    const id = this.#nextId++;
    const t = arrive(this.#state, this.#limits, id, this.#now(), charge);
    switch (t.decision.kind) {
      case 'too_large':
        return Promise.reject(new SegserveError('TOO_LARGE', `this image needs ~${mib(t.decision.needed)} to process; this server's budget is ${mib(t.decision.budget)}`));
      case 'reject':
        return Promise.reject(this.#overloaded(t.decision.reason));
      case 'run':
        this.#state = t.state;
        this.#changed();
        return Promise.resolve(this.#permit(charge));
      case 'queue':
        this.#state = t.state;
        return new Promise<Permit>((resolve, reject) => {
          const onAbort = (): void => {
            const w = withdraw(this.#state, id);
            this.#state = w.state;
            if (!w.decision) return;
            this.#settle(id, (p) => p.reject(signal?.reason));
            // The bytes it held at the door may let the head of the queue start.
            this.#apply({ slot: false, bytes: 0 });
          };
          signal?.addEventListener('abort', onAbort, { once: true });
          this.#pending.set(id, { charge, resolve, reject, cleanup: () => signal?.removeEventListener('abort', onAbort) });
          this.#changed();
        });
    }
  }

  /** Resolves when nothing runs, waits or holds memory (graceful shutdown). */
  idle(): Promise<void> {
    if (this.#isIdle()) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  #isIdle(): boolean {
    return this.#state.running === 0 && this.#state.queue.length === 0 && this.#state.held === 0;
  }

  #permit(charge: Charge): Permit {
    let slot = true;
    let bytes = true;
    const permit: Permit = {
      releaseSlot: () => {
        if (!slot) return;
        slot = false;
        this.#apply({ slot: true, bytes: 0 });
      },
      releaseBytes: () => {
        if (!bytes) return;
        bytes = false;
        this.#apply({ slot: false, bytes: charge.door + charge.work });
      },
      release: () => {
        const freed: Freed = { slot, bytes: bytes ? charge.door + charge.work : 0 };
        slot = false;
        bytes = false;
        if (freed.slot || freed.bytes > 0) this.#apply(freed);
      },
    };
    return permit;
  }

  #apply(freed: Freed): void {
    const t = release(this.#state, this.#limits, this.#now(), freed);
    this.#state = t.state;
    this.#rejectExpired(t.decision.expired);
    for (const w of t.decision.started) this.#settle(w.id, (p) => p.resolve(this.#permit(p.charge)));
    this.#changed();
  }

  #settle(id: number, fn: (p: Pending) => void): void {
    const p = this.#pending.get(id);
    if (!p) return;
    this.#pending.delete(id);
    p.cleanup();
    fn(p);
  }

  #rejectExpired(expired: readonly Waiter[]): void {
    for (const w of expired) {
      const waited = Math.round(this.#now() - w.enqueuedAt);
      this.#settle(w.id, (p) => p.reject(new SegserveError('OVERLOADED', `overloaded: waited ${waited} ms in the queue (limit ${this.#limits.queueTimeoutMs} ms)`)));
    }
  }

  #onTimer(): void {
    this.#timer = undefined;
    this.#timerAt = undefined;
    const t = expire(this.#state, this.#now());
    this.#state = t.state;
    this.#rejectExpired(t.decision);
    // Expired uploads free bytes: the head may fit now.
    if (t.decision.length > 0) this.#apply({ slot: false, bytes: 0 });
    else this.#changed();
  }

  #changed(): void {
    const at = nextExpiry(this.#state);
    if (at !== this.#timerAt) {
      if (this.#timer) clearTimeout(this.#timer);
      this.#timer = undefined;
      this.#timerAt = at;
      if (at !== undefined) this.#timer = setTimeout(() => this.#onTimer(), Math.max(0, at - this.#now()) + 1);
    }
    this.#onChange?.(this.snapshot);
    if (this.#isIdle()) for (const w of this.#idleWaiters.splice(0)) w();
  }
}
