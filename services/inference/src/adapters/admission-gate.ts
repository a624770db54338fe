// The async side of admission control: promises, one timer and abort signals around the pure
// transitions of domain/admission.ts. acquire() resolves with a permit when a slot is free,
// rejects at once with OVERLOADED when the queue is full, with OVERLOADED when the queue
// timeout passes (the request is then never run), and with the signal's reason when the caller
// goes away while waiting. A permit must be released exactly once.

import { SegserveError } from '@segserve/proto';
import { EMPTY_ADMISSION, arrive, expire, nextExpiry, release, withdraw, wouldRefuseArrival, wouldReject, type AdmissionLimits, type AdmissionState, type Waiter } from '../domain/admission.js';

export interface Permit {
  release(): void;
}

export interface AdmissionSnapshot {
  readonly running: number;
  readonly queued: number;
}

interface Pending {
  readonly resolve: (p: Permit) => void;
  readonly reject: (err: unknown) => void;
  readonly cleanup: () => void;
}

export class AdmissionGate {
  readonly limits: AdmissionLimits;
  readonly #now: () => number;
  readonly #onChange: ((s: AdmissionSnapshot) => void) | undefined;
  readonly #pending = new Map<number, Pending>();
  readonly #idleWaiters: (() => void)[] = [];
  #state: AdmissionState = EMPTY_ADMISSION;
  #nextId = 1;
  #timer: NodeJS.Timeout | undefined;
  #timerAt: number | undefined;

  constructor(limits: AdmissionLimits, options: { now?: () => number; onChange?: (s: AdmissionSnapshot) => void } = {}) {
    this.limits = limits;
    this.#now = options.now ?? (() => performance.now());
    this.#onChange = options.onChange;
  }

  get snapshot(): AdmissionSnapshot {
    return { running: this.#state.running, queued: this.#state.queue.length };
  }

  /** Throws OVERLOADED when acquire() would refuse now; call it before work a refusal would waste. */
  refuseIfFull(): void {
    if (wouldReject(this.#state, this.limits)) throw this.#overloaded();
  }

  /** Throws OVERLOADED when `arriving` calls beside those inside would take every place. */
  refuseArrival(arriving: number): void {
    if (wouldRefuseArrival(this.#state, this.limits, arriving)) throw this.#overloaded();
  }

  #overloaded(): SegserveError {
    return new SegserveError('OVERLOADED', `overloaded: ${this.limits.maxConcurrency} running and ${this.limits.maxQueue} queued`);
  }

  /** A slot for a request of `client` (clients take turns: domain/admission.ts). */
  acquire(signal?: AbortSignal, client?: string): Promise<Permit> {
    if (signal?.aborted) return Promise.reject(signal.reason as Error);
    const id = this.#nextId++;
    const t = arrive(this.#state, this.limits, id, this.#now(), client);
    this.#state = t.state;
    switch (t.decision.kind) {
      case 'reject':
        return Promise.reject(this.#overloaded());
      case 'run':
        this.#changed();
        return Promise.resolve(this.#permit(client));
      case 'queue':
        return new Promise<Permit>((resolve, reject) => {
          const onAbort = (): void => {
            const w = withdraw(this.#state, id);
            this.#state = w.state;
            if (w.decision) this.#settle(id, (p) => p.reject(signal?.reason));
          };
          signal?.addEventListener('abort', onAbort, { once: true });
          this.#pending.set(id, { resolve, reject, cleanup: () => signal?.removeEventListener('abort', onAbort) });
          this.#changed();
        });
    }
  }

  /** Resolves when nothing runs and nothing waits (graceful shutdown). */
  idle(): Promise<void> {
    if (this.#state.running === 0 && this.#state.queue.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  #permit(client: string | undefined): Permit {
    let released = false;
    return {
      release: () => {
        if (released) return;
        released = true;
        const t = release(this.#state, this.limits, this.#now(), client);
        this.#state = t.state;
        this.#rejectExpired(t.decision.expired);
        const started = t.decision.started;
        if (started) this.#settle(started.id, (p) => p.resolve(this.#permit(started.client)));
        this.#changed();
      },
    };
  }

  #settle(id: number, fn: (p: Pending) => void): void {
    const p = this.#pending.get(id);
    if (!p) return;
    this.#pending.delete(id);
    p.cleanup();
    fn(p);
    this.#changed();
  }

  #rejectExpired(expired: readonly Waiter[]): void {
    for (const w of expired) {
      const waited = Math.round(this.#now() - w.enqueuedAt);
      this.#settle(w.id, (p) => p.reject(new SegserveError('OVERLOADED', `overloaded: waited ${waited} ms in the queue (limit ${this.limits.queueTimeoutMs} ms)`)));
    }
  }

  #onTimer(): void {
    this.#timer = undefined;
    this.#timerAt = undefined;
    const t = expire(this.#state, this.#now());
    this.#state = t.state;
    this.#rejectExpired(t.decision);
    this.#changed();
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
    if (this.#state.running === 0 && this.#state.queue.length === 0) for (const w of this.#idleWaiters.splice(0)) w();
  }
}
