// The admission budget of issue 11: what admitted requests may hold at once, from the memory
// limit (cgroup, or configured), a headroom fraction, the process's measured baseline and the
// activations of the model runs that may be under way (one set per session).

export interface BudgetInputs {
  readonly limitBytes: number;
  readonly headroom: number;
  /** RSS after the model is loaded and warmed up. */
  readonly baselineBytes: number;
  /** Peak above the baseline during one warm-up run (0 when the arena keeps it resident). */
  readonly activationBytes: number;
  readonly sessions: number;
}

export function admissionBudget(b: BudgetInputs): number {
  return Math.max(0, Math.floor(b.limitBytes * (1 - b.headroom) - b.baselineBytes - b.sessions * b.activationBytes));
}

/**
 * Activations when the peak cannot be measured: a multiple of the input tensor's bytes, the
 * factor measured on the bundled PSPNets (docs/benchmarks.md, "Admission by cost").
 */
export const ACTIVATION_PER_INPUT_BYTE = 10;
