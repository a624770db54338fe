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

/**
 * The least headroom of a serving process: what it grows by beyond its RSS after start-up once
 * it serves (V8 heap, the image library's and the allocator's arenas, received buffers not yet
 * collected) — measured in docs/benchmarks.md, "hostile". A percentage of the limit alone was
 * less than that in a 512 MiB pod.
 */
export const MIN_HEADROOM_BYTES = 96 * 2 ** 20;

/**
 * The headroom of a process with a memory limit of `limitBytes`: `fraction` of it, at least
 * MIN_HEADROOM_BYTES — but never more than a quarter of the limit (a pod far smaller than the
 * 512 MiB one, as in tests, keeps a budget).
 */
export function headroomBytes(limitBytes: number, fraction: number): number {
  return Math.max(limitBytes * fraction, Math.min(MIN_HEADROOM_BYTES, limitBytes / 4));
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
  /**
   * Fraction of the budget the charges of one client may hold together (0–1]; absent = no limit.
   * The rest stays for the other clients, so that one client's many large requests cannot fill
   * the budget and make everyone else's wait. Charges without a client are not limited by it.
   */
  readonly clientShare?: number;
  /**
   * How many large charges may be held at once; absent = as many as the large share holds. A
   * large upload is not only memory: it is read, copied and sent on by the same event loop and
   * the same upstream connection as every small request, so how many are under way at once is
   * what an ordinary request queues behind. 0 = no large charge ever fits.
   */
  readonly largeAtOnce?: number;
}

/**
 * Large charges held at once by default: one. Each large upload is read, copied and handed on by
 * the same event loop (and, at the gateway, the same upstream connection) as every small request;
 * more of them at once do not go through sooner, they make each ordinary request wait behind more
 * of their bytes (docs/benchmarks.md, "Issue 11, sixth round").
 */
export const LARGE_AT_ONCE = 1;

/**
 * A charge above 1/16 of the budget is large; large charges together may hold half of it, and
 * LARGE_AT_ONCE of them at once; the charges of one client together, three quarters. So ordinary
 * requests always find room however many large uploads arrive, and from however many clients;
 * other clients' find some however many ordinary ones one client sends, and a lone client keeps
 * most of the budget (docs/benchmarks.md, "hostile").
 */
export function defaultChargePolicy(capacityBytes: number): ChargePolicy {
  return { largeBytes: Math.floor(capacityBytes / 16), largeShare: 0.5, clientShare: 0.75, largeAtOnce: LARGE_AT_ONCE };
}

export interface LedgerState {
  readonly capacity: number;
  /** Everything charged now, large charges included. */
  readonly held: number;
  /** The part of `held` that large charges hold. */
  readonly heldLarge: number;
  /** How many large charges are held now (absent = 0). */
  readonly largeCount?: number;
}

export interface ChargeRequest {
  /** Bytes to add. */
  readonly bytes: number;
  /** What the same charge already holds (counted in `held`), when it grows; 0 for a new one. */
  readonly holding?: number;
  /**
   * What the charge's client holds now, this charge's `holding` included; absent for a charge
   * that has no client (then the client share does not apply).
   */
  readonly clientHeld?: number;
}

export type ChargeDecision =
  | { readonly kind: 'admit'; readonly large: boolean }
  /** Fits the budget, not now: wait for others to release, or refuse OVERLOADED. */
  | { readonly kind: 'wait'; readonly large: boolean }
  /** Could never fit, even in an idle process: TOO_LARGE. `ceiling` is the most one charge may hold. */
  | { readonly kind: 'never'; readonly ceiling: number };

/** The most one charge of `total` bytes may ever hold (`client`: whether it has a client). */
export function chargeCeiling(capacity: number, policy: ChargePolicy, total: number, client = false): number {
  const byKind = total > policy.largeBytes ? (policy.largeAtOnce === 0 ? 0 : Math.floor(capacity * policy.largeShare)) : capacity;
  return client ? Math.min(byKind, clientCeiling(capacity, policy)) : byKind;
}

/** The most the charges of one client may hold together. */
export function clientCeiling(capacity: number, policy: ChargePolicy): number {
  return Math.floor(capacity * (policy.clientShare ?? 1));
}

export function decideCharge(state: LedgerState, request: ChargeRequest, policy: ChargePolicy): ChargeDecision {
  const holding = request.holding ?? 0;
  const total = holding + request.bytes;
  const large = total > policy.largeBytes;
  const client = request.clientHeld !== undefined;
  const ceiling = chargeCeiling(state.capacity, policy, total, client);
  const most = client ? clientCeiling(state.capacity, policy) : state.capacity;
  if (total > ceiling) return { kind: 'never', ceiling: Math.max(ceiling, Math.min(policy.largeBytes, most)) };
  // What the others hold: this charge's own bytes are in `held` (and in `heldLarge` once large).
  const wasLarge = holding > policy.largeBytes;
  const othersHeld = state.held - holding;
  const othersLarge = state.heldLarge - (wasLarge ? holding : 0);
  const clientOthers = (request.clientHeld ?? holding) - holding;
  // A charge that becomes large now takes one of the places of large charges; one that already was keeps its own.
  const othersLargeCount = (state.largeCount ?? 0) - (wasLarge ? 1 : 0);
  const fits =
    othersHeld + total <= state.capacity &&
    (!large || othersLarge + total <= Math.floor(state.capacity * policy.largeShare)) &&
    (!large || policy.largeAtOnce === undefined || othersLargeCount < policy.largeAtOnce) &&
    (!client || clientOthers + total <= most);
  return { kind: fits ? 'admit' : 'wait', large };
}
