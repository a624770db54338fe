// Promotion policy (docs/architecture.md#promotion): parsing, and the pure "does the candidate beat the stable?"
// decision with its one-sentence explanation. No I/O here beyond the schema compiled at load.
//
// Semantics, also in docs/architecture.md#promotion:
// - A tolerance or minimum improvement is relative (a fraction of the stable's figure) when
//   the objective says `relative: true`, else absolute. `claim_tolerance` follows the same rule.
// - `limits`: `<metric>_min` / `<metric>_max`, or a bare `<metric>` meaning the bound on the
//   objective's bad side (a maximum for `better: lower`, a minimum for `better: higher`).
// - "Beats": every limit holds, no objective worse than the stable by more than its tolerance,
//   and at least one better by at least its minimum improvement (and by more than zero).
// - Missing or non-finite figures never promote. No stable yet: limits alone decide.
// - `machine_bound: true` (latency, memory: figures that depend on the hardware) makes an
//   objective a ratio to the stable measured in the same run. Given the ratio's interval
//   (domain/ratio.ts), it is worse only when the whole interval is beyond the tolerance, and
//   better only when the whole interval is better by the minimum improvement: noise alone
//   neither promotes nor refuses. Claims measured elsewhere are held to machine-bound limits
//   only through the serving side's own measurement.
import { Ajv } from 'ajv';
import { parse as parseYaml } from 'yaml';
import { SegserveError, describeAjvErrors, loadSchema, type ReasonCode } from '@segserve/proto';
import type { Metrics } from './ports.js';
import { describeRatio, type RatioInterval } from './ratio.js';

export type Direction = 'higher' | 'lower';

export interface Objective {
  readonly metric: string;
  readonly better: Direction;
  /** Allowed worsening against the stable (absolute, or a fraction when `relative`). */
  readonly tolerance: number;
  readonly relative: boolean;
  /** Improvement that counts as "better" (absolute, or a fraction when `relative`); 0 = any. */
  readonly minImprovement: number;
  /** Depends on the hardware: compared as a ratio to the stable measured in the same run. */
  readonly machineBound: boolean;
}

export interface Limit {
  /** The key as written in the policy file, e.g. `miou_min` or `latency_ms_p95`. */
  readonly key: string;
  readonly metric: string;
  readonly bound: 'min' | 'max';
  readonly value: number;
}

export interface VerifyPolicy {
  /** Run the golden set through the candidate before any live traffic. */
  readonly golden: boolean;
  /**
   * Accepted golden sets, newest first: directory names under `<goldenRoot>/<model>/`. A result
   * is verified on the one whose digest it names; the first is the default for publish, eval and
   * the canary's golden replay.
   */
  readonly goldenSets: readonly string[];
  /** How far a measured figure may fall short of the claim (one-sided, per metric). */
  readonly claimTolerance: Readonly<Record<string, number>>;
  /** Passes over the golden set when measuring latency (mIoU is taken from the first). */
  readonly repeats: number;
}

export interface CanaryPolicy {
  /** Canary weights in percent, ascending. */
  readonly steps: readonly number[];
  readonly intervalMs: number;
  readonly minRequests: number;
  readonly maxFailedChecks: number;
  readonly maxErrorRate: number;
  readonly maxLatencyRatio: number;
  readonly maxRssFraction: number;
  readonly bakeMs: number;
  /** Times a bake without a passing check is extended by `bakeMs` before it ends with `no_evidence`. */
  readonly bakeExtensions: number;
  /** What a bake that never got a passing check ends as: Failed (rolled back) or Succeeded with the reason recorded. */
  readonly onNoEvidence: 'fail' | 'succeed';
  /** Checks in a row at one canary step that hold (too few samples, inconclusive) before it ends with `no_evidence`. */
  readonly maxHolds: number;
}

export interface Policy {
  readonly model: string;
  readonly objectives: readonly Objective[];
  readonly limits: readonly Limit[];
  readonly verify: VerifyPolicy;
  readonly canary: CanaryPolicy;
}

interface PolicyDocument {
  model: string;
  objectives: { metric: string; better: Direction; tolerance?: number; relative?: boolean; machine_bound?: boolean }[];
  limits?: Record<string, number>;
  min_improvement?: Record<string, number>;
  verify?: { golden?: boolean; golden_sets?: string[]; claim_tolerance?: Record<string, number>; repeats?: number };
  canary?: {
    steps?: number[];
    interval?: number | string;
    min_requests?: number;
    max_failed_checks?: number;
    max_error_rate?: number;
    max_latency_ratio?: number;
    max_rss_fraction?: number;
    bake?: number | string;
    bake_extensions?: number;
    on_no_evidence?: 'fail' | 'succeed';
    max_holds?: number;
  };
}

/** The example policy's values (docs/architecture.md#promotion), used for whatever a policy file leaves out. */
export const DEFAULT_VERIFY = { golden: true, golden_sets: ['golden'], claim_tolerance: { miou: 0.01, latency_ms_p95: 0.25 }, repeats: 1 } as const;
export const DEFAULT_CANARY = {
  steps: [10, 25, 50],
  interval: '30s',
  min_requests: 50,
  max_failed_checks: 2,
  max_error_rate: 0.01,
  max_latency_ratio: 1.2,
  max_rss_fraction: 0.9,
  bake: '60s',
  bake_extensions: 2,
  on_no_evidence: 'fail',
  max_holds: 10,
} as const;

const ajv = new Ajv({ allErrors: true, strict: true });
const validateDocument = ajv.compile<PolicyDocument>(loadSchema('policy.schema.json'));

const UNIT_MS: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** `30s` → 30000; a bare number is seconds. */
export function durationMs(value: number | string): number {
  if (typeof value === 'number') return Math.round(value * 1000);
  const m = /^([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)$/.exec(value);
  if (!m) throw new SegserveError('INVALID_INPUT', `'${value}' is not a duration (e.g. 30s, 5m)`);
  return Math.round(Number(m[1]) * (UNIT_MS[m[2] as string] ?? 1));
}

function invalid(source: string, message: string): SegserveError {
  return new SegserveError('INVALID_INPUT', `${source}: ${message}`);
}

function parseLimits(doc: PolicyDocument, objectives: readonly Objective[], source: string): Limit[] {
  return Object.entries(doc.limits ?? {}).map(([key, value]) => {
    if (!Number.isFinite(value)) throw invalid(source, `limits.${key} is not a finite number`);
    const suffix = /^(.+)_(min|max)$/.exec(key);
    if (suffix && !objectives.some((o) => o.metric === key)) {
      return { key, metric: suffix[1] as string, bound: suffix[2] as 'min' | 'max', value };
    }
    const objective = objectives.find((o) => o.metric === key);
    if (!objective) throw invalid(source, `limits.${key}: no objective says which way is better; write ${key}_min or ${key}_max`);
    return { key, metric: key, bound: objective.better === 'lower' ? 'max' : 'min', value };
  });
}

/** Validates a parsed policy document and fills in defaults. */
export function parsePolicy(value: unknown, source = 'policy'): Policy {
  if (!validateDocument(value)) throw invalid(source, describeAjvErrors(validateDocument.errors));
  const doc = value;
  const seen = new Set<string>();
  for (const o of doc.objectives) {
    if (seen.has(o.metric)) throw invalid(source, `objective '${o.metric}' appears twice`);
    seen.add(o.metric);
  }
  for (const key of Object.keys(doc.min_improvement ?? {})) {
    if (!seen.has(key)) throw invalid(source, `min_improvement.${key}: not an objective`);
  }
  for (const o of doc.objectives) {
    if (o.machine_bound && o.relative === false) throw invalid(source, `objective '${o.metric}': a machine-bound objective is a ratio to the stable; leave out relative or set it to true`);
  }
  const objectives: Objective[] = doc.objectives.map((o) => ({
    metric: o.metric,
    better: o.better,
    tolerance: o.tolerance ?? 0,
    relative: o.relative ?? o.machine_bound ?? false,
    minImprovement: doc.min_improvement?.[o.metric] ?? 0,
    machineBound: o.machine_bound ?? false,
  }));
  const c = { ...DEFAULT_CANARY, ...doc.canary };
  const steps = [...c.steps];
  if (steps.some((s, i) => i > 0 && s <= (steps[i - 1] as number))) throw invalid(source, 'canary.steps must be strictly ascending');
  return deepFreeze({
    model: doc.model,
    objectives,
    limits: parseLimits(doc, objectives, source),
    verify: {
      golden: doc.verify?.golden ?? DEFAULT_VERIFY.golden,
      goldenSets: [...(doc.verify?.golden_sets ?? DEFAULT_VERIFY.golden_sets)],
      claimTolerance: { ...(doc.verify?.claim_tolerance ?? DEFAULT_VERIFY.claim_tolerance) },
      repeats: doc.verify?.repeats ?? DEFAULT_VERIFY.repeats,
    },
    canary: {
      steps,
      intervalMs: durationMs(c.interval),
      minRequests: c.min_requests,
      maxFailedChecks: c.max_failed_checks,
      maxErrorRate: c.max_error_rate,
      maxLatencyRatio: c.max_latency_ratio,
      maxRssFraction: c.max_rss_fraction,
      bakeMs: durationMs(c.bake),
      bakeExtensions: c.bake_extensions,
      onNoEvidence: c.on_no_evidence,
      maxHolds: c.max_holds,
    },
  });
}

/** The golden set a model is measured on by default (publish, eval, the canary's replay): the policy's newest. */
export function defaultGoldenSet(policy: Policy | undefined): string {
  return policy?.verify.goldenSets[0] ?? DEFAULT_VERIFY.golden_sets[0];
}

/** Parses policy text; YAML is a superset of JSON, so one parser reads both. */
export function parsePolicyText(text: string, source = 'policy'): Policy {
  let value: unknown;
  try {
    value = parseYaml(text);
  } catch (err) {
    throw invalid(source, `not YAML or JSON (${err instanceof Error ? err.message : String(err)})`);
  }
  return parsePolicy(value, source);
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object') {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

// ---------------------------------------------------------------------------------------------
// Judging figures

/** Absorbs binary floating-point noise at exact boundaries (0.8 − 0.795 > 0.005 in doubles). */
const EPSILON = 1e-9;

/** The policy's verdicts; each is a reason code (proto/src/reason-codes.ts). */
export const POLICY_CODES = ['beats_stable', 'first_model_within_limits', 'metric_missing', 'limit_exceeded', 'worse_than_stable', 'no_improvement'] as const satisfies readonly ReasonCode[];
export type PolicyCode = (typeof POLICY_CODES)[number];

export type ObjectiveStatus = 'better' | 'worse' | 'within_tolerance' | 'no_baseline';

export interface ObjectiveFigure {
  readonly metric: string;
  readonly candidate: number;
  readonly stable: number | null;
  /** Improvement over the stable (positive = better), absolute or relative like the objective. */
  readonly improvement: number | null;
  readonly relative: boolean;
  readonly status: ObjectiveStatus;
  /** Machine-bound objectives judged on the candidate/stable ratio: the ratio and its interval. */
  readonly ratio?: RatioInterval;
}

export interface LimitFigure {
  readonly key: string;
  readonly metric: string;
  readonly bound: 'min' | 'max';
  readonly limit: number;
  readonly value: number | null;
  readonly ok: boolean;
  /**
   * Why a broken limit did not count. A machine-bound limit, with the stable measured beside the
   * candidate in the same paired run, counts only when it is broken decisively: the stable breaks
   * it too (the machine is over it, whatever the model), or the candidate's figure at the
   * favourable end of its ratio interval (stable × ratio bound) is within it (the candidate may be
   * as fast as a stable that serves within the limit: noise, not evidence). Either way the
   * candidate/stable ratio judges that metric instead, as its objective.
   */
  readonly waived?: string;
}

export interface PolicyVerdict {
  readonly accepted: boolean;
  readonly code: PolicyCode;
  /** One sentence a person can read. */
  readonly reason: string;
  readonly missing: readonly string[];
  readonly limits: readonly LimitFigure[];
  readonly objectives: readonly ObjectiveFigure[];
}

/** Up to 4 significant decimals, no trailing zeros: 0.8123, 412.5, 0.05. */
export function fmt(x: number): string {
  if (!Number.isFinite(x)) return String(x);
  const abs = Math.abs(x);
  const digits = abs >= 100 ? 1 : abs >= 1 ? 3 : 4;
  return String(Number(x.toFixed(digits)));
}

function amount(x: number, relative: boolean): string {
  return relative ? `${fmt(x * 100)}%` : fmt(x);
}

function finite(m: Metrics | null, key: string): number | null {
  const v = m?.[key];
  return typeof v === 'number' && Number.isFinite(v) ? v : null;
}

function requiredMetrics(policy: Policy): string[] {
  return [...new Set([...policy.objectives.map((o) => o.metric), ...policy.limits.map((l) => l.metric)])];
}

/**
 * A machine-bound objective on the ratio candidate/stable and its interval: worse only when the
 * whole interval is beyond the tolerance, better only when the whole interval clears the
 * minimum improvement; in between (noise) it is within tolerance.
 */
function judgeRatio(o: Objective, candidate: number, stable: number | null, r: RatioInterval): ObjectiveFigure {
  const lower = o.better === 'lower';
  const improvement = lower ? 1 - r.ratio : r.ratio - 1;
  const worstEnd = lower ? r.low - 1 : 1 - r.high; // how much worse even the most favourable end is
  const bestEnd = lower ? 1 - r.high : r.low - 1; // how much better even the least favourable end is
  let status: ObjectiveStatus = 'within_tolerance';
  if (worstEnd > o.tolerance + EPSILON) status = 'worse';
  else if (bestEnd > EPSILON && bestEnd >= o.minImprovement - EPSILON) status = 'better';
  return { metric: o.metric, candidate, stable, improvement, relative: true, status, ratio: r };
}

function judgeObjective(o: Objective, candidate: number, stable: number | null, ratio: RatioInterval | undefined): ObjectiveFigure {
  if (o.machineBound && ratio) return judgeRatio(o, candidate, stable, ratio);
  if (stable === null) return { metric: o.metric, candidate, stable, improvement: null, relative: o.relative, status: 'no_baseline' };
  const delta = o.better === 'higher' ? candidate - stable : stable - candidate;
  // A relative figure against a stable of 0 has no meaning; fall back to the absolute delta.
  const relative = o.relative && stable !== 0;
  const improvement = relative ? delta / Math.abs(stable) : delta;
  let status: ObjectiveStatus = 'within_tolerance';
  if (improvement < -o.tolerance - EPSILON) status = 'worse';
  else if (improvement > EPSILON && improvement >= o.minImprovement - EPSILON) status = 'better';
  return { metric: o.metric, candidate, stable, improvement, relative, status };
}

function describeObjective(f: ObjectiveFigure, o: Objective): string {
  if (f.ratio) {
    const base = `${f.metric} ${describeRatio(f.ratio)} of the stable`;
    return f.status === 'worse' ? `${base} is worse than the tolerance ${amount(o.tolerance, true)}` : base;
  }
  const by = f.improvement === null ? '' : ` (${amount(Math.abs(f.improvement), f.relative)})`;
  const base = `${f.metric} ${fmt(f.candidate)} vs ${f.stable === null ? '?' : fmt(f.stable)}`;
  if (f.status === 'worse') return `${base}${by} is worse than the tolerance ${amount(o.tolerance, f.relative)}`;
  return `${base}${by}`;
}

export interface JudgeOptions {
  /** Candidate/stable ratios (with their interval) that judge the machine-bound objectives. */
  readonly ratios?: Readonly<Record<string, RatioInterval>>;
  /**
   * The figures are claims measured on another machine: limits of machine-bound metrics are not
   * applied to them (they apply to what the serving side measures), nor are those metrics required.
   */
  readonly measuredElsewhere?: boolean;
}

function isMachineBound(policy: Policy, metric: string): boolean {
  return policy.objectives.some((o) => o.metric === metric && o.machineBound);
}

/**
 * Does `candidate` beat `stable` under `policy`? `stable` null means there is no stable yet
 * (the first model), which is accepted on the hard limits alone.
 */
export function evaluatePolicy(policy: Policy, candidate: Metrics, stable: Metrics | null, options: JudgeOptions = {}): PolicyVerdict {
  const servingSideOnly = (metric: string): boolean => options.measuredElsewhere === true && isMachineBound(policy, metric);
  const missing = requiredMetrics(policy).filter((k) => finite(candidate, k) === null && !(servingSideOnly(k) && options.ratios?.[k] !== undefined));
  const limits: LimitFigure[] = policy.limits.filter((l) => !servingSideOnly(l.metric)).map((l) => {
    const holds = (v: number | null): boolean => v !== null && (l.bound === 'max' ? v <= l.value + EPSILON : v >= l.value - EPSILON);
    const value = finite(candidate, l.metric);
    const figure = { key: l.key, metric: l.metric, bound: l.bound, limit: l.value, value, ok: holds(value) };
    const beside = finite(stable, l.metric);
    const ratio = options.ratios?.[l.metric];
    if (figure.ok || value === null || beside === null || !isMachineBound(policy, l.metric) || ratio === undefined) return figure;
    if (!holds(beside)) return { ...figure, ok: true, waived: `the stable measured beside it is at ${fmt(beside)} too, so the machine is over the limit; the ratio to the stable judges ${l.metric}` };
    const favourable = beside * (l.bound === 'max' ? ratio.low : ratio.high);
    if (!holds(favourable)) return figure;
    return { ...figure, ok: true, waived: `with the stable measured beside it at ${fmt(beside)} and the ratio ${describeRatio(ratio)}, it may be at ${fmt(favourable)}, within the limit: not decisively over it; the ratio to the stable judges ${l.metric}` };
  });
  const verdict = (accepted: boolean, code: PolicyCode, reason: string, objectives: ObjectiveFigure[] = []): PolicyVerdict => ({
    accepted,
    code,
    reason,
    missing,
    limits,
    objectives,
  });
  if (missing.length > 0) {
    return verdict(false, 'metric_missing', `Not promoted: ${missing.join(', ')} ${missing.length === 1 ? 'is' : 'are'} missing or not a finite number.`);
  }
  const broken = limits.filter((l) => !l.ok);
  if (broken.length > 0) {
    const parts = broken.map((l) => `${l.metric} ${fmt(l.value as number)} is ${l.bound === 'max' ? 'above the limit' : 'below the minimum'} ${fmt(l.limit)}`);
    return verdict(false, 'limit_exceeded', `Not promoted: ${parts.join('; ')}.`);
  }
  if (stable === null) {
    return verdict(true, 'first_model_within_limits', 'Accepted: there is no stable version yet and every hard limit holds.');
  }
  const figures = policy.objectives.map((o) => judgeObjective(o, finite(candidate, o.metric) ?? Number.NaN, finite(stable, o.metric), options.ratios?.[o.metric]));
  const byMetric = (f: ObjectiveFigure): Objective => policy.objectives.find((o) => o.metric === f.metric) as Objective;
  const worse = figures.filter((f) => f.status === 'worse');
  if (worse.length > 0) {
    return verdict(false, 'worse_than_stable', `Not promoted: ${worse.map((f) => describeObjective(f, byMetric(f))).join('; ')}.`, figures);
  }
  const better = figures.filter((f) => f.status === 'better');
  if (better.length === 0) {
    const noBaseline = figures.filter((f) => f.status === 'no_baseline').map((f) => f.metric);
    const why = noBaseline.length === figures.length ? 'the stable has no figures to compare with' : 'no objective improves on the stable by its minimum improvement';
    return verdict(false, 'no_improvement', `Not promoted: ${why} (${figures.map((f) => describeObjective(f, byMetric(f))).join('; ')}).`, figures);
  }
  const rest = figures.filter((f) => f.status !== 'better');
  const restText = rest.length > 0 ? `, and ${rest.map((f) => f.metric).join(', ')} stay${rest.length === 1 ? 's' : ''} within tolerance` : '';
  const waived = limits.filter((l) => l.waived !== undefined);
  const waivedText = waived.map((l) => ` (${l.metric} ${fmt(l.value as number)} is over the limit ${fmt(l.limit)}, but ${l.waived})`).join('');
  return verdict(true, 'beats_stable', `Accepted: ${better.map((f) => describeObjective(f, byMetric(f))).join('; ')} better than the stable${restText}${waivedText}.`, figures);
}

// ---------------------------------------------------------------------------------------------
// Do the measured figures reproduce the claim?

export const CLAIM_CODES = ['claims_reproduced', 'claim_not_reproduced', 'measurement_missing'] as const satisfies readonly ReasonCode[];
export type ClaimCode = (typeof CLAIM_CODES)[number];

export interface ClaimFigure {
  readonly metric: string;
  /** `figure`: the claimed figure itself; `ratio`: the claimed candidate/stable ratio (machine-bound). */
  readonly kind: 'figure' | 'ratio';
  readonly claimed: number;
  readonly measured: number | null;
  /** Allowed shortfall, absolute or relative (to the claim) like the metric's objective; always relative for a ratio. */
  readonly tolerance: number;
  readonly relative: boolean;
  /** How much worse the measurement is than the claim (≤ 0 when at least as good). */
  readonly shortfall: number | null;
  /** A ratio claim: the measured ratio's interval, and the band of ratios that reproduce the claim. */
  readonly interval?: RatioInterval;
  readonly band?: { readonly low: number | null; readonly high: number | null };
  readonly ok: boolean;
}

export interface ClaimVerdict {
  readonly ok: boolean;
  readonly code: ClaimCode;
  readonly reason: string;
  readonly figures: readonly ClaimFigure[];
}

export interface ClaimOptions {
  /** Claimed candidate/stable ratios of machine-bound metrics (an ExperimentResult with a baseline). */
  readonly claimedRatios?: Readonly<Record<string, number>>;
  /** The verifier's own paired ratios, with their intervals; absent when there was no stable to pair with. */
  readonly measuredRatios?: Readonly<Record<string, RatioInterval>>;
  /**
   * The claims were measured on another machine (a result with a baseline): a machine-bound
   * figure is only checked as a ratio, never against this machine's figure; without a stable
   * to pair with, it is not checked here at all.
   */
  readonly measuredElsewhere?: boolean;
}

/**
 * A claimed ratio against the measured one. One-sided like every claim: measuring a better
 * ratio is fine; the claim fails only when the whole measured interval lies beyond the band
 * (claimed ratio × (1 ± tolerance)), i.e. when the measurement shows the claim was too good.
 */
function checkRatioClaim(metric: string, better: Direction, claimed: number, tolerance: number, measured: RatioInterval | undefined): ClaimFigure {
  const lower = better === 'lower';
  const band = lower ? { low: null, high: claimed * (1 + tolerance) } : { low: claimed * (1 - tolerance), high: null };
  if (!measured) return { metric, kind: 'ratio', claimed, measured: null, tolerance, relative: true, shortfall: null, band, ok: false };
  const shortfall = claimed === 0 ? 0 : (lower ? measured.ratio - claimed : claimed - measured.ratio) / claimed;
  const ok = lower ? measured.low <= (band.high as number) + EPSILON : measured.high >= (band.low as number) - EPSILON;
  return { metric, kind: 'ratio', claimed, measured: measured.ratio, tolerance, relative: true, shortfall, interval: measured, band, ok };
}

function describeClaimFailure(f: ClaimFigure): string {
  if (f.kind === 'ratio' && f.interval) {
    const edge = f.band?.high !== null && f.band?.high !== undefined ? `up to ×${f.band.high.toFixed(2)}` : `down to ×${(f.band?.low ?? 0).toFixed(2)}`;
    return `${f.metric} measured ${describeRatio(f.interval)} of the stable against a claimed ×${f.claimed.toFixed(2)} (tolerance ${amount(f.tolerance, true)}: ${edge})`;
  }
  return `${f.metric} measured ${fmt(f.measured as number)} against a claimed ${fmt(f.claimed)} (off by ${amount(f.shortfall as number, f.relative)}, tolerance ${amount(f.tolerance, f.relative)})`;
}

/**
 * Checks each metric in `verify.claim_tolerance` that was claimed. One-sided: measuring better
 * than claimed is fine (the promoter's machine may be faster); only a shortfall beyond the
 * tolerance fails. A metric without an objective has no direction and is checked both ways.
 * A machine-bound metric with a claimed ratio (`options.claimedRatios`) is checked as a ratio
 * against the verifier's own paired ratio: figures measured on another machine are never
 * compared with this machine's.
 */
export function checkClaims(policy: Policy, claimed: Metrics, measured: Metrics, options: ClaimOptions = {}): ClaimVerdict {
  const figures: ClaimFigure[] = [];
  for (const [metric, tolerance] of Object.entries(policy.verify.claimTolerance)) {
    const objective = policy.objectives.find((o) => o.metric === metric);
    const claimedRatio = options.claimedRatios?.[metric];
    if (objective?.machineBound && claimedRatio !== undefined && Number.isFinite(claimedRatio) && (options.measuredRatios || !options.measuredElsewhere)) {
      figures.push(checkRatioClaim(metric, objective.better, claimedRatio, tolerance, options.measuredRatios?.[metric]));
      continue;
    }
    if (objective?.machineBound && options.measuredElsewhere) continue;
    const c = finite(claimed, metric);
    if (c === null) continue;
    const relative = (objective?.relative ?? false) && c !== 0;
    const m = finite(measured, metric);
    if (m === null) {
      figures.push({ metric, kind: 'figure', claimed: c, measured: null, tolerance, relative, shortfall: null, ok: false });
      continue;
    }
    const raw = objective === undefined ? Math.abs(m - c) : objective.better === 'higher' ? c - m : m - c;
    const shortfall = relative ? raw / Math.abs(c) : raw;
    figures.push({ metric, kind: 'figure', claimed: c, measured: m, tolerance, relative, shortfall, ok: shortfall <= tolerance + EPSILON });
  }
  const unmeasured = figures.filter((f) => f.measured === null);
  if (unmeasured.length > 0) {
    return { ok: false, code: 'measurement_missing', reason: `Rejected: ${unmeasured.map((f) => f.metric).join(', ')} could not be measured on the golden set.`, figures };
  }
  const failed = figures.filter((f) => !f.ok);
  if (failed.length > 0) {
    return { ok: false, code: 'claim_not_reproduced', reason: `Rejected: the claim does not reproduce on the golden set: ${failed.map(describeClaimFailure).join('; ')}.`, figures };
  }
  const checked = figures.map((f) => (f.kind === 'ratio' ? `${f.metric} ratio` : f.metric));
  return {
    ok: true,
    code: 'claims_reproduced',
    reason: checked.length > 0 ? `The claimed ${checked.join(', ')} reproduce${checked.length === 1 ? 's' : ''} on the golden set.` : 'No claim to check.',
    figures,
  };
}
