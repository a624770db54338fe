// Admission by cost (docs/architecture.md#memory-and-admission-by-cost): each process has a budget for what its
// requests hold — its memory limit minus its measured baseline and a headroom — and every
// request is charged the bytes it will hold as soon as they are known (its compressed bytes at
// the door, more once its size is known). A charge that could never fit is TOO_LARGE; one that
// cannot fit now waits (bounded) or is OVERLOADED. The rules are pure and shared by every
// service; memory-ledger.ts holds the state, the waiters and their timers.

export interface BudgetInputs {
  /** The cgroup memory limit (what segserve_memory_limit_bytes reports), bytes; undefined = none. */
  readonly limitBytes: number | undefined;
  /** The limit to assume where there is no cgroup limit, bytes. */
  readonly configuredBytes: number;
  /** The process's own resident memory at rest (after start-up), bytes. */
  readonly baselineBytes: number;
  /** Kept out of the budget for what is never charged (heap growth, sockets, allocator slack). */
  readonly headroomBytes: number;
}

/** Bytes this process may let its requests hold at once (never negative). */
export function requestBudgetBytes(inputs: BudgetInputs): number {
  const limit = inputs.limitBytes ?? inputs.configuredBytes;
  return Math.max(0, Math.floor(limit - inputs.baselineBytes - inputs.headroomBytes));
}

export interface ChargePolicy {
  /** A charge above this many bytes is large. */
  readonly largeBytes: number;
  /**
   * Fraction of the budget large charges may hold together (0–1]. The rest stays for small
   * ones, so that a burst of huge uploads cannot make ordinary requests wait.
   */
  readonly largeShare: number;
}

/** One eighth of the budget is large; large charges share three quarters of it. */
export function defaultChargePolicy(capacityBytes: number): ChargePolicy {
  return { largeBytes: Math.floor(capacityBytes / 8), largeShare: 0.75 };
}

export interface LedgerState {
  readonly capacity: number;
  /** Everything charged now, large charges included. */
  readonly held: number;
  /** The part of `held` that large charges hold. */
  readonly heldLarge: number;
}

export interface ChargeRequest {
  /** Bytes to add. */
  readonly bytes: number;
  /** What the same charge already holds (counted in `held`), when it grows; 0 for a new one. */
  readonly holding?: number;
}

export type ChargeDecision =
  | { readonly kind: 'admit'; readonly large: boolean }
  /** Fits the budget, not now: wait for others to release, or refuse OVERLOADED. */
  | { readonly kind: 'wait'; readonly large: boolean }
  /** Could never fit, even in an idle process: TOO_LARGE. `ceiling` is the most one charge may hold. */
  | { readonly kind: 'never'; readonly ceiling: number };

/** The most one charge of `total` bytes may ever hold. */
export function chargeCeiling(capacity: number, policy: ChargePolicy, total: number): number {
  return total > policy.largeBytes ? Math.floor(capacity * policy.largeShare) : capacity;
}

export function decideCharge(state: LedgerState, request: ChargeRequest, policy: ChargePolicy): ChargeDecision {
  const holding = request.holding ?? 0;
  const total = holding + request.bytes;
  const large = total > policy.largeBytes;
  const ceiling = chargeCeiling(state.capacity, policy, total);
  if (total > ceiling) return { kind: 'never', ceiling: Math.max(ceiling, Math.min(policy.largeBytes, state.capacity)) };
  // What the others hold: this charge's own bytes are in `held` (and in `heldLarge` once large).
  const wasLarge = holding > policy.largeBytes;
  const othersHeld = state.held - holding;
  const othersLarge = state.heldLarge - (wasLarge ? holding : 0);
  const fits = othersHeld + total <= state.capacity && (!large || othersLarge + total <= ceiling);
  return { kind: fits ? 'admit' : 'wait', large };
}
