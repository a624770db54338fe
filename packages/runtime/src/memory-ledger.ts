// The stateful side of memory-budget.ts: what is charged now, the waiters (a bounded list, each
// with a deadline and an optional abort signal) and their timers. A charge is released exactly
// once; releasing wakes the waiters that now fit, oldest first — a small charge may pass a large
// one that still does not fit, so ordinary requests never queue behind a huge upload. A charge
// may name its client (an API key, a peer): what each client holds is counted, and the policy's
// client share bounds it.
import { SegserveError } from '@segserve/proto';
import { decideCharge, defaultChargePolicy, type ChargeDecision, type ChargePolicy, type LedgerState } from './memory-budget.js';

export interface LedgerOptions {
  readonly capacityBytes: number;
  readonly policy?: ChargePolicy;
  /** Waiters at most; beyond them a charge that does not fit now is OVERLOADED at once. */
  readonly maxWaiting: number;
  /** Called after every change (metrics). */
  readonly onChange?: (snapshot: LedgerSnapshot) => void;
}

export interface LedgerSnapshot extends LedgerState {
  readonly waiting: number;
}

export interface WaitOptions {
  /** How long to wait for room; 0 = refuse OVERLOADED at once when it does not fit now. */
  readonly waitMs: number;
  /** Aborting withdraws the wait; the promise rejects with the signal's reason. */
  readonly signal?: AbortSignal;
  /** Who the charge is for (see ChargePolicy.clientShare); absent = not limited per client. */
  readonly client?: string;
  /** Called once when the charge starts to wait for room (not when admitted or refused at once). */
  readonly onWait?: () => void;
}

export interface Charge {
  /** Bytes held now. */
  readonly bytes: number;
  /** Adds `extra` bytes or throws TOO_LARGE / OVERLOADED (nothing is added then). */
  grow(extra: number): void;
  /** Adds `extra` bytes, waiting for room as `charge()` does. */
  growWhenRoom(extra: number, options: WaitOptions): Promise<void>;
  /** Gives everything back; later calls do nothing. */
  release(): void;
}

interface Waiter {
  readonly bytes: number;
  readonly holding: number;
  readonly client: string | undefined;
  readonly admit: () => void;
}

const mib = (bytes: number): string => (bytes / 2 ** 20).toFixed(1);

export class MemoryLedger {
  readonly capacity: number;
  readonly policy: ChargePolicy;
  readonly #maxWaiting: number;
  readonly #onChange: ((s: LedgerSnapshot) => void) | undefined;
  readonly #waiters: Waiter[] = [];
  /** Bytes held per client (charges that name one); a client holding nothing has no entry. */
  readonly #heldBy = new Map<string, number>();
  #held = 0;
  #heldLarge = 0;
  #largeCount = 0;

  constructor(options: LedgerOptions) {
    this.capacity = Math.max(0, Math.floor(options.capacityBytes));
    this.policy = options.policy ?? defaultChargePolicy(this.capacity);
    this.#maxWaiting = options.maxWaiting;
    this.#onChange = options.onChange;
  }

  get snapshot(): LedgerSnapshot {
    return { capacity: this.capacity, held: this.#held, heldLarge: this.#heldLarge, largeCount: this.#largeCount, waiting: this.#waiters.length };
  }

  /** What `client` holds now (undefined for a charge without a client). */
  heldBy(client: string | undefined): number | undefined {
    return client === undefined ? undefined : (this.#heldBy.get(client) ?? 0);
  }

  #decide(bytes: number, holding: number, client: string | undefined): ChargeDecision {
    return decideCharge(this.snapshot, { bytes, holding, clientHeld: this.heldBy(client) }, this.policy);
  }

  #tooLarge(bytes: number, ceiling: number): SegserveError {
    return new SegserveError('TOO_LARGE', `the request needs ${mib(bytes)} MiB of memory; one request may hold at most ${mib(ceiling)} MiB here`, { details: { bytes, ceiling } });
  }

  #overloaded(): SegserveError {
    return new SegserveError('OVERLOADED', `overloaded: ${mib(this.#held)} of ${mib(this.capacity)} MiB of request memory in use`);
  }

  /** Moves `bytes` of a charge that holds `holding` into the books. */
  #add(bytes: number, holding: number, client: string | undefined): void {
    const large = holding + bytes > this.policy.largeBytes;
    const wasLarge = holding > this.policy.largeBytes;
    this.#held += bytes;
    if (large) this.#heldLarge += wasLarge ? bytes : holding + bytes;
    if (large && !wasLarge) this.#largeCount++;
    if (client !== undefined) this.#heldBy.set(client, (this.#heldBy.get(client) ?? 0) + bytes);
    this.#changed();
  }

  #remove(holding: number, client: string | undefined): void {
    this.#held -= holding;
    if (holding > this.policy.largeBytes) {
      this.#heldLarge -= holding;
      this.#largeCount--;
    }
    if (client !== undefined) {
      const left = (this.#heldBy.get(client) ?? 0) - holding;
      if (left > 0) this.#heldBy.set(client, left);
      else this.#heldBy.delete(client);
    }
    this.#wake();
  }

  #changed(): void {
    this.#onChange?.(this.snapshot);
  }

  /** Admits, oldest first, every waiter that fits now. */
  #wake(): void {
    for (let i = 0; i < this.#waiters.length; ) {
      const w = this.#waiters[i]!;
      if (this.#decide(w.bytes, w.holding, w.client).kind === 'admit') {
        this.#waiters.splice(i, 1);
        this.#add(w.bytes, w.holding, w.client);
        w.admit();
      } else i++;
    }
    this.#changed();
  }

  /**
   * Charges `bytes` for `client` now or throws: TOO_LARGE when it could never fit, OVERLOADED
   * when not now. The charge stays the client's as it grows.
   */
  tryCharge(bytes: number, client?: string): Charge {
    const c = this.#newCharge(client);
    c.grow(bytes);
    return c;
  }

  /** Charges `bytes`, waiting up to `waitMs` for room (see WaitOptions). */
  async charge(bytes: number, options: WaitOptions): Promise<Charge> {
    const c = this.#newCharge(options.client);
    await c.growWhenRoom(bytes, options);
    return c;
  }

  /** Memory already allocated (a response that has arrived): charged whether or not it fits. */
  hold(bytes: number, client?: string): Charge {
    const c = this.#newCharge(client);
    c.force(bytes);
    return c;
  }

  #newCharge(client: string | undefined): Charge & { force(bytes: number): void } {
    // eslint-disable-next-line @typescript-eslint/no-this-alias -- the charge closes over its ledger
    const ledger = this;
    let held = 0;
    let released = false;
    const check = (extra: number): ChargeDecision => {
      if (released) throw new Error('memory ledger: charge used after release');
      if (!Number.isFinite(extra) || extra < 0) throw new RangeError(`memory ledger: cannot charge ${extra} bytes`);
      return ledger.#decide(extra, held, client);
    };
    return {
      get bytes() {
        return held;
      },
      force(extra: number) {
        check(extra);
        ledger.#add(extra, held, client);
        held += extra;
      },
      grow(extra: number) {
        const d = check(extra);
        if (d.kind === 'never') throw ledger.#tooLarge(held + extra, d.ceiling);
        if (d.kind === 'wait' || (ledger.#waiters.length > 0 && !ledger.#smallBeside(held + extra))) throw ledger.#overloaded();
        ledger.#add(extra, held, client);
        held += extra;
      },
      growWhenRoom(extra: number, options: WaitOptions): Promise<void> {
        const d = check(extra);
        if (d.kind === 'never') return Promise.reject(ledger.#tooLarge(held + extra, d.ceiling));
        if (d.kind === 'admit' && (ledger.#waiters.length === 0 || ledger.#smallBeside(held + extra))) {
          ledger.#add(extra, held, client);
          held += extra;
          return Promise.resolve();
        }
        if (options.signal?.aborted) return Promise.reject(options.signal.reason as Error);
        if (options.waitMs <= 0 || ledger.#waiters.length >= ledger.#maxWaiting) return Promise.reject(ledger.#overloaded());
        return new Promise<void>((resolve, reject) => {
          const done = (): void => {
            clearTimeout(timer);
            options.signal?.removeEventListener('abort', onAbort);
          };
          const withdraw = (err: unknown): void => {
            const i = ledger.#waiters.indexOf(waiter);
            if (i < 0) return;
            ledger.#waiters.splice(i, 1);
            done();
            ledger.#changed();
            reject(err);
          };
          const waiter: Waiter = {
            bytes: extra,
            holding: held,
            client,
            admit: () => {
              done();
              held += extra;
              resolve();
            },
          };
          const onAbort = (): void => withdraw(options.signal?.reason);
          const timer = setTimeout(() => withdraw(ledger.#overloaded()), options.waitMs);
          timer.unref();
          options.signal?.addEventListener('abort', onAbort, { once: true });
          ledger.#waiters.push(waiter);
          ledger.#changed();
          options.onWait?.();
        });
      },
      release() {
        if (released) return;
        released = true;
        const h = held;
        held = 0;
        ledger.#remove(h, client);
      },
    };
  }

  /** A small charge may pass waiters (they wait for large room); a large one queues behind them. */
  #smallBeside(total: number): boolean {
    return total <= this.policy.largeBytes;
  }
}
