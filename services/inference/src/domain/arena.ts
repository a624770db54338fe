// Whether onnxruntime's CPU arena is on (SEGSERVE_ORT_ARENA=auto|on|off). The arena makes runs
// faster but keeps what a run allocated resident between runs; with the arena off and the memory
// pattern on, a run's activations are one block that is freed after it. 'auto' turns the arena on
// only when that block is small against the pod's memory limit. The size is measured, not guessed:
// the peak growth of this process's resident memory during a warm-up run with the arena off (the
// model loader creates the sessions again with the arena on when this says so).
// docs/architecture.md#memory-and-admission-by-cost; the share: docs/benchmarks.md, "Issue 15,
// seventh round".

export type ArenaMode = 'auto' | 'on' | 'off';

export interface ArenaPolicy {
  readonly mode: ArenaMode;
  /** Sessions, each of which keeps its own arena. */
  readonly sessions: number;
  /** The memory limit the admission budget is derived from. */
  readonly limitBytes: number;
  /** The most of the limit that all sessions' warm-up growth may be for 'auto' to turn the arena on. */
  readonly maxShare: number;
}

export type ArenaReason = 'set' | 'small-activations' | 'large-activations' | 'not-measured';

export interface ArenaDecision {
  readonly arena: boolean;
  readonly reason: ArenaReason;
}

/** Before any measurement: the fixed modes are decided, 'auto' starts with the arena off. */
export function initialArena(mode: ArenaMode): boolean {
  return mode === 'on';
}

/**
 * @param growthBytes the warm-up run's peak resident growth with the arena off; undefined where
 *   it cannot be measured (then 'auto' keeps the arena off: its cost would be unknown).
 */
export function decideArena(policy: ArenaPolicy, growthBytes: number | undefined): ArenaDecision {
  if (policy.mode !== 'auto') return { arena: policy.mode === 'on', reason: 'set' };
  if (growthBytes === undefined) return { arena: false, reason: 'not-measured' };
  return policy.sessions * growthBytes <= policy.maxShare * policy.limitBytes ? { arena: true, reason: 'small-activations' } : { arena: false, reason: 'large-activations' };
}
