import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { checkClaims, defaultGoldenSet, durationMs, evaluatePolicy, fmt, parsePolicy, parsePolicyText, type Policy } from './policy.js';
import type { Metrics } from './ports.js';
import type { RatioInterval } from './ratio.js';

// The tables judge the example policy of docs/architecture.md#promotion (fixed here, so that tuning the bundled policy
// file does not move them); the bundled file is checked against the committed versions below.
const EXAMPLE_POLICY = `
model: facade-ads
objectives:
  - {metric: miou,           better: higher, tolerance: 0.005}
  - {metric: latency_ms_p95, better: lower,  tolerance: 0.05, relative: true}
  - {metric: peak_rss_mb,    better: lower,  tolerance: 0.05, relative: true}
limits: {latency_ms_p95: 500, peak_rss_mb: 400, miou_min: 0.75}
min_improvement: {miou: 0.002, latency_ms_p95: 0.05, peak_rss_mb: 0.05}
verify: {golden: true, claim_tolerance: {miou: 0.01, latency_ms_p95: 0.25}}
canary: {steps: [10, 25, 50], interval: 30s, min_requests: 50, max_failed_checks: 2,
         max_error_rate: 0.01, max_latency_ratio: 1.2, max_rss_fraction: 0.9, bake: 60s}
`;
const policy: Policy = parsePolicyText(EXAMPLE_POLICY, 'example-policy.yaml');
const REPO = fileURLToPath(new URL('../../../../', import.meta.url));
const BUNDLED = parsePolicyText(readFileSync(`${REPO}services/promoter/policies/facade-ads.yaml`, 'utf8'), 'facade-ads.yaml');

const stable: Metrics = { miou: 0.8, latency_ms_p95: 400, peak_rss_mb: 300 };

describe('parsePolicy', () => {
  it('reads the example policy (docs/architecture.md#promotion) with its limits, tolerances and canary settings', () => {
    expect(policy.model).toBe('facade-ads');
    expect(policy.objectives).toEqual([
      { metric: 'miou', better: 'higher', tolerance: 0.005, relative: false, minImprovement: 0.002, machineBound: false },
      { metric: 'latency_ms_p95', better: 'lower', tolerance: 0.05, relative: true, minImprovement: 0.05, machineBound: false },
      { metric: 'peak_rss_mb', better: 'lower', tolerance: 0.05, relative: true, minImprovement: 0.05, machineBound: false },
    ]);
    expect(policy.limits).toEqual([
      { key: 'latency_ms_p95', metric: 'latency_ms_p95', bound: 'max', value: 500 },
      { key: 'peak_rss_mb', metric: 'peak_rss_mb', bound: 'max', value: 400 },
      { key: 'miou_min', metric: 'miou', bound: 'min', value: 0.75 },
    ]);
    expect(policy.verify).toEqual({ golden: true, goldenSets: ['golden'], claimTolerance: { miou: 0.01, latency_ms_p95: 0.25 }, repeats: 1 });
    expect(policy.canary).toEqual({
      steps: [10, 25, 50],
      intervalMs: 30_000,
      minRequests: 50,
      maxFailedChecks: 2,
      maxErrorRate: 0.01,
      maxLatencyRatio: 1.2,
      maxRssFraction: 0.9,
      bakeMs: 60_000,
      bakeExtensions: 2,
      onNoEvidence: 'fail',
      maxHolds: 10,
    });
    expect(Object.isFrozen(policy.canary.steps)).toBe(true);
  });

  it('fills defaults for a minimal JSON policy', () => {
    const p = parsePolicyText('{"model":"m","objectives":[{"metric":"miou","better":"higher"}]}');
    expect(p.objectives[0]).toEqual({ metric: 'miou', better: 'higher', tolerance: 0, relative: false, minImprovement: 0, machineBound: false });
    expect(p.limits).toEqual([]);
    expect(p.canary.steps).toEqual([10, 25, 50]);
    expect(p.verify.golden).toBe(true);
    expect(p.verify.goldenSets).toEqual(['golden']);
    expect(defaultGoldenSet(p)).toBe('golden');
    expect(defaultGoldenSet(undefined)).toBe('golden');
  });

  it('reads the accepted golden sets, newest first: the first is the default', () => {
    const p = parsePolicy({ ...base, verify: { golden_sets: ['golden-2', 'golden'] } });
    expect(p.verify.goldenSets).toEqual(['golden-2', 'golden']);
    expect(defaultGoldenSet(p)).toBe('golden-2');
  });

  const base = { model: 'm', objectives: [{ metric: 'miou', better: 'higher' }] };
  it.each([
    ['unknown top-level field', { ...base, extra: 1 }, /must NOT have additional properties 'extra'/],
    ['bad model name', { ...base, model: '../etc' }, /model must match pattern/],
    ['no objectives', { ...base, objectives: [] }, /objectives must NOT have fewer than 1 items/],
    ['bad direction', { ...base, objectives: [{ metric: 'miou', better: 'up' }] }, /better must be equal to one of the allowed values/],
    ['negative tolerance', { ...base, objectives: [{ metric: 'miou', better: 'higher', tolerance: -1 }] }, /tolerance must be >= 0/],
    ['duplicate objective', { ...base, objectives: [base.objectives[0], base.objectives[0]] }, /appears twice/],
    ['min_improvement of a non-objective', { ...base, min_improvement: { latency_ms_p95: 0.1 } }, /min_improvement.latency_ms_p95: not an objective/],
    ['bare limit without objective', { ...base, limits: { latency_ms_p95: 500 } }, /write latency_ms_p95_min or latency_ms_p95_max/],
    ['descending canary steps', { ...base, canary: { steps: [50, 10] } }, /strictly ascending/],
    ['canary step over 100', { ...base, canary: { steps: [10, 150] } }, /must be <= 100/],
    ['bad duration', { ...base, canary: { interval: '30 seconds' } }, /interval/],
    ['unknown canary field', { ...base, canary: { weight: 3 } }, /additional properties 'weight'/],
    ['a machine-bound objective that is not relative', { ...base, objectives: [{ metric: 'latency_ms_p95', better: 'lower', machine_bound: true, relative: false }] }, /machine-bound objective is a ratio to the stable/],
    ['an unknown on_no_evidence', { ...base, canary: { on_no_evidence: 'maybe' } }, /on_no_evidence must be equal to one of the allowed values/],
    ['zero max_holds', { ...base, canary: { max_holds: 0 } }, /max_holds must be >= 1/],
    ['no accepted golden set', { ...base, verify: { golden_sets: [] } }, /golden_sets must NOT have fewer than 1 items/],
    ['a golden set named twice', { ...base, verify: { golden_sets: ['golden', 'golden'] } }, /golden_sets must NOT have duplicate items/],
    ['a golden set outside the model directory', { ...base, verify: { golden_sets: ['../golden'] } }, /verify.golden_sets.0 must match pattern/],
    ['a golden set path', { ...base, verify: { golden_sets: ['a/b'] } }, /must match pattern/],
    ['not an object', 'model: m', /must be object/],
  ])('rejects %s', (_name, doc, message) => {
    expect(() => parsePolicy(doc, 'p.yaml')).toThrow(message);
  });

  it('rejects text that is neither YAML nor JSON', () => {
    expect(() => parsePolicyText('{model: [', 'p.yaml')).toThrow(/p.yaml: not YAML or JSON/);
  });

  it('a machine-bound objective is relative; the no-evidence settings are read', () => {
    const p = parsePolicy({ ...base, objectives: [{ metric: 'latency_ms_p95', better: 'lower', tolerance: 0.25, machine_bound: true }], canary: { bake_extensions: 0, on_no_evidence: 'succeed', max_holds: 3 } });
    expect(p.objectives[0]).toMatchObject({ relative: true, machineBound: true });
    expect(p.canary).toMatchObject({ bakeExtensions: 0, onNoEvidence: 'succeed', maxHolds: 3 });
  });

  it('accepts explicit _min/_max limits on metrics without objectives', () => {
    const p = parsePolicy({ ...base, limits: { latency_ms_p95_max: 500, fps_min: 2 } });
    expect(p.limits.map((l) => [l.metric, l.bound, l.value])).toEqual([
      ['latency_ms_p95', 'max', 500],
      ['fps', 'min', 2],
    ]);
  });
});

describe('the bundled facade-ads policy and the committed versions (claims against v2)', () => {
  const bundled = BUNDLED;
  const claims = (v: string): Metrics => (JSON.parse(readFileSync(`${REPO}models/facade-ads/${v}/model.json`, 'utf8')) as { metrics: Metrics }).metrics;
  it.each([
    ['3', true, 'beats_stable', /^Accepted: miou [\d.]+ vs [\d.]+ \([\d.]+\)( better|;)/],
    ['4', false, 'limit_exceeded', /^Not promoted: miou [\d.]+ is below the minimum 0\.65\.$/],
    ['5', false, 'worse_than_stable', /latency_ms_p95 [\d.]+ vs [\d.]+ \(\d+(\.\d+)?%\) is worse than the tolerance 25%; peak_rss_mb [\d.]+ vs [\d.]+ \([\d.]+%\) is worse than the tolerance 15%\.$/],
    ['2', false, 'no_improvement', /no objective improves/],
  ])('v%s → accepted %s (%s)', (v, accepted, code, reason) => {
    const verdict = evaluatePolicy(bundled, claims(v), claims('2'));
    expect({ accepted: verdict.accepted, code: verdict.code }).toEqual({ accepted, code });
    expect(verdict.reason).toMatch(reason);
  });
  it('keeps the canary settings of the example policy', () => {
    expect(bundled.canary).toEqual(policy.canary);
    expect(bundled.verify.repeats).toBe(3);
  });
});

describe('durationMs', () => {
  it.each([
    ['500ms', 500],
    ['30s', 30_000],
    ['1.5m', 90_000],
    ['2h', 7_200_000],
    [12, 12_000],
  ] as const)('%s → %i ms', (input, ms) => {
    expect(durationMs(input)).toBe(ms);
  });
});

describe('evaluatePolicy', () => {
  // Every branch of the decision is a row: limits, tolerance (absolute and relative), minimum
  // improvement (absolute and relative), missing / non-finite figures, first model.
  const rows: { name: string; candidate: Metrics; stable: Metrics | null; accepted: boolean; code: string; reason: RegExp }[] = [
    { name: 'better mIoU, rest equal', candidate: { ...stable, miou: 0.81 }, stable, accepted: true, code: 'beats_stable', reason: /^Accepted: miou 0.81 vs 0.8 \(0.01\) better than the stable, and latency_ms_p95, peak_rss_mb stay within tolerance\.$/ },
    { name: 'faster by ≥ 5 % (relative min improvement)', candidate: { ...stable, latency_ms_p95: 380 }, stable, accepted: true, code: 'beats_stable', reason: /latency_ms_p95 380 vs 400 \(5%\) better/ },
    { name: 'faster by < 5 % only', candidate: { ...stable, latency_ms_p95: 390 }, stable, accepted: false, code: 'no_improvement', reason: /no objective improves on the stable by its minimum improvement/ },
    { name: 'mIoU better by less than min improvement', candidate: { ...stable, miou: 0.801 }, stable, accepted: false, code: 'no_improvement', reason: /^Not promoted: no objective improves/ },
    { name: 'mIoU better exactly by min improvement', candidate: { ...stable, miou: 0.802 }, stable, accepted: true, code: 'beats_stable', reason: /miou 0.802 vs 0.8/ },
    { name: 'identical figures', candidate: stable, stable, accepted: false, code: 'no_improvement', reason: /no objective improves/ },
    { name: 'mIoU worse within absolute tolerance, latency better', candidate: { ...stable, miou: 0.796, latency_ms_p95: 300 }, stable, accepted: true, code: 'beats_stable', reason: /latency_ms_p95 300 vs 400 \(25%\) better.*miou, peak_rss_mb stay within tolerance/ },
    { name: 'mIoU worse exactly at tolerance, latency better', candidate: { ...stable, miou: 0.795, latency_ms_p95: 300 }, stable, accepted: true, code: 'beats_stable', reason: /^Accepted/ },
    { name: 'mIoU worse beyond tolerance (int8 accuracy loser)', candidate: { miou: 0.78, latency_ms_p95: 250, peak_rss_mb: 200 }, stable, accepted: false, code: 'worse_than_stable', reason: /^Not promoted: miou 0.78 vs 0.8 \(0.02\) is worse than the tolerance 0.005\.$/ },
    { name: 'latency worse beyond relative tolerance', candidate: { ...stable, miou: 0.85, latency_ms_p95: 440 }, stable, accepted: false, code: 'worse_than_stable', reason: /latency_ms_p95 440 vs 400 \(10%\) is worse than the tolerance 5%/ },
    { name: 'latency worse within relative tolerance', candidate: { ...stable, miou: 0.85, latency_ms_p95: 419 }, stable, accepted: true, code: 'beats_stable', reason: /^Accepted: miou/ },
    { name: 'latency over the hard limit', candidate: { ...stable, miou: 0.9, latency_ms_p95: 620 }, stable, accepted: false, code: 'limit_exceeded', reason: /^Not promoted: latency_ms_p95 620 is above the limit 500\.$/ },
    { name: 'memory over the hard limit (latency/memory loser)', candidate: { miou: 0.82, latency_ms_p95: 650, peak_rss_mb: 480 }, stable, accepted: false, code: 'limit_exceeded', reason: /latency_ms_p95 650 is above the limit 500; peak_rss_mb 480 is above the limit 400/ },
    { name: 'mIoU under its minimum', candidate: { ...stable, miou: 0.7 }, stable: null, accepted: false, code: 'limit_exceeded', reason: /miou 0.7 is below the minimum 0.75/ },
    { name: 'limit met exactly', candidate: { miou: 0.75, latency_ms_p95: 500, peak_rss_mb: 400 }, stable: null, accepted: true, code: 'first_model_within_limits', reason: /no stable version yet/ },
    { name: 'first model within limits', candidate: stable, stable: null, accepted: true, code: 'first_model_within_limits', reason: /^Accepted: there is no stable version yet and every hard limit holds\.$/ },
    { name: 'first model over a limit', candidate: { ...stable, peak_rss_mb: 401 }, stable: null, accepted: false, code: 'limit_exceeded', reason: /peak_rss_mb 401 is above the limit 400/ },
    { name: 'missing metric', candidate: { miou: 0.9, latency_ms_p95: 100 }, stable, accepted: false, code: 'metric_missing', reason: /^Not promoted: peak_rss_mb is missing or not a finite number\.$/ },
    { name: 'NaN metric', candidate: { ...stable, miou: Number.NaN }, stable, accepted: false, code: 'metric_missing', reason: /miou is missing/ },
    { name: 'Infinity metric', candidate: { ...stable, latency_ms_p95: Number.POSITIVE_INFINITY, peak_rss_mb: Number.NaN }, stable: null, accepted: false, code: 'metric_missing', reason: /latency_ms_p95, peak_rss_mb are missing/ },
    { name: 'stable lacks one figure: others decide', candidate: { ...stable, miou: 0.82 }, stable: { miou: 0.8, latency_ms_p95: 400 }, accepted: true, code: 'beats_stable', reason: /peak_rss_mb stay/ },
    { name: 'stable lacks every figure', candidate: stable, stable: {}, accepted: false, code: 'no_improvement', reason: /the stable has no figures to compare with/ },
    { name: 'stable with NaN figure is no baseline', candidate: { ...stable, miou: 0.9 }, stable: { ...stable, miou: Number.NaN }, accepted: false, code: 'no_improvement', reason: /miou 0.9 vs \?/ },
  ];
  it.each(rows)('$name', ({ candidate, stable: s, accepted, code, reason }) => {
    const v = evaluatePolicy(policy, candidate, s);
    expect({ accepted: v.accepted, code: v.code }).toEqual({ accepted, code });
    expect(v.reason).toMatch(reason);
    expect(v.reason.split('. ').length).toBe(1); // one sentence
  });

  it('a relative objective against a stable of 0 falls back to absolute', () => {
    const p = parsePolicy({ model: 'm', objectives: [{ metric: 'errors', better: 'lower', relative: true, tolerance: 0.1 }] });
    expect(evaluatePolicy(p, { errors: 0 }, { errors: 0 }).code).toBe('no_improvement');
    expect(evaluatePolicy(p, { errors: 0.05 }, { errors: 0 }).code).toBe('no_improvement');
    expect(evaluatePolicy(p, { errors: 0.2 }, { errors: 0 }).code).toBe('worse_than_stable');
  });

  it('reports the figures behind the decision', () => {
    const v = evaluatePolicy(policy, { miou: 0.78, latency_ms_p95: 250, peak_rss_mb: 200 }, stable);
    expect(v.objectives.map((o) => [o.metric, o.status])).toEqual([
      ['miou', 'worse'],
      ['latency_ms_p95', 'better'],
      ['peak_rss_mb', 'better'],
    ]);
    expect(v.objectives[1]?.improvement).toBeCloseTo(0.375);
    expect(v.limits.every((l) => l.ok)).toBe(true);
  });
});

describe('checkClaims', () => {
  const claimed: Metrics = { miou: 0.82, latency_ms_p95: 400, peak_rss_mb: 300 };
  const rows: { name: string; measured: Metrics; claim?: Metrics; ok: boolean; code: string; reason: RegExp }[] = [
    { name: 'reproduced exactly', measured: claimed, ok: true, code: 'claims_reproduced', reason: /^The claimed miou, latency_ms_p95 reproduce on the golden set\.$/ },
    { name: 'mIoU short within tolerance', measured: { ...claimed, miou: 0.811 }, ok: true, code: 'claims_reproduced', reason: /reproduce/ },
    { name: 'mIoU short exactly by tolerance', measured: { ...claimed, miou: 0.81 }, ok: true, code: 'claims_reproduced', reason: /reproduce/ },
    { name: 'inflated mIoU', measured: { ...claimed, miou: 0.7 }, ok: false, code: 'claim_not_reproduced', reason: /^Rejected: the claim does not reproduce on the golden set: miou measured 0.7 against a claimed 0.82 \(off by 0.12, tolerance 0.01\)\.$/ },
    { name: 'measured better than claimed', measured: { ...claimed, miou: 0.9, latency_ms_p95: 100 }, ok: true, code: 'claims_reproduced', reason: /reproduce/ },
    { name: 'latency slower within relative tolerance', measured: { ...claimed, latency_ms_p95: 500 }, ok: true, code: 'claims_reproduced', reason: /reproduce/ },
    { name: 'latency slower beyond relative tolerance', measured: { ...claimed, latency_ms_p95: 520 }, ok: false, code: 'claim_not_reproduced', reason: /latency_ms_p95 measured 520 against a claimed 400 \(off by 30%, tolerance 25%\)/ },
    { name: 'memory not in claim_tolerance is not checked', measured: { ...claimed, peak_rss_mb: 900 }, ok: true, code: 'claims_reproduced', reason: /reproduce/ },
    { name: 'measurement missing', measured: { latency_ms_p95: 400 }, ok: false, code: 'measurement_missing', reason: /^Rejected: miou could not be measured on the golden set\.$/ },
    { name: 'nothing claimed', measured: claimed, claim: {}, ok: true, code: 'claims_reproduced', reason: /^No claim to check\.$/ },
  ];
  it.each(rows)('$name', ({ measured, claim, ok, code, reason }) => {
    const v = checkClaims(policy, claim ?? claimed, measured);
    expect({ ok: v.ok, code: v.code }).toEqual({ ok, code });
    expect(v.reason).toMatch(reason);
  });

  it('checks a metric without an objective in both directions', () => {
    const p = parsePolicy({ model: 'm', objectives: [{ metric: 'miou', better: 'higher' }], verify: { claim_tolerance: { fps: 1 } } });
    expect(checkClaims(p, { fps: 10 }, { fps: 12 }).ok).toBe(false);
    expect(checkClaims(p, { fps: 10 }, { fps: 9.5 }).ok).toBe(true);
  });
});

describe('machine-bound objectives: ratios to the stable with their interval', () => {
  // The bundled policy marks latency and memory machine-bound (the tables above use the example policy).
  const mb = BUNDLED;
  const iv = (ratio: number, low = ratio, high = ratio, samples = 72): RatioInterval => ({ ratio, low, high, confidence: 0.9, samples });
  const st: Metrics = { miou: 0.675, latency_ms_p95: 140, peak_rss_mb: 210 };
  const cand = (miou: number, latencyRatio: number, rssRatio = 1): Metrics => ({ miou, latency_ms_p95: 140 * latencyRatio, peak_rss_mb: 210 * rssRatio });
  const rows: { name: string; candidate: Metrics; stable?: Metrics; ratios: Record<string, RatioInterval>; elsewhere?: boolean; code: string; reason: RegExp }[] = [
    { name: 'same cost, better mIoU', candidate: cand(0.695, 1.02), ratios: { latency_ms_p95: iv(1.02, 0.94, 1.1), peak_rss_mb: iv(0.99) }, code: 'beats_stable', reason: /^Accepted: miou 0.695 vs 0.675 \(0.02\) better than the stable, and latency_ms_p95, peak_rss_mb stay within tolerance\.$/ },
    { name: 'a busy moment: point ×1.30 but the interval reaches below ×1.25 → not evidence of worse', candidate: cand(0.695, 1.3), ratios: { latency_ms_p95: iv(1.3, 1.18, 1.45), peak_rss_mb: iv(1) }, code: 'beats_stable', reason: /^Accepted/ },
    { name: 'the whole interval beyond ×1.25 → worse', candidate: cand(0.695, 2.4), ratios: { latency_ms_p95: iv(2.4, 2.2, 2.6), peak_rss_mb: iv(1.35) }, code: 'worse_than_stable', reason: /^Not promoted: latency_ms_p95 ×2.40 \(90 % interval ×2.20–×2.60, 72 pairs\) of the stable is worse than the tolerance 25%; peak_rss_mb ×1.35 of the stable is worse than the tolerance 15%\.$/ },
    { name: 'faster: the whole interval clears the 25 % minimum', candidate: cand(0.675, 0.4), ratios: { latency_ms_p95: iv(0.4, 0.35, 0.48), peak_rss_mb: iv(0.9) }, code: 'beats_stable', reason: /^Accepted: latency_ms_p95 ×0.40 \(90 % interval ×0.35–×0.48, 72 pairs\) of the stable better than the stable/ },
    { name: 'faster by the point, not by the whole interval → no improvement', candidate: cand(0.675, 0.7), ratios: { latency_ms_p95: iv(0.7, 0.6, 0.8), peak_rss_mb: iv(1) }, code: 'no_improvement', reason: /no objective improves/ },
    { name: 'claims measured on a slower machine: absolute latency over the limit does not count, the ratio does', candidate: cand(0.695, 1) && { miou: 0.695, latency_ms_p95: 900, peak_rss_mb: 450 }, ratios: { latency_ms_p95: iv(1.0), peak_rss_mb: iv(1.0) }, elsewhere: true, code: 'beats_stable', reason: /^Accepted/ },
    { name: 'the same figures measured on the serving side: the limits apply', candidate: { miou: 0.695, latency_ms_p95: 900, peak_rss_mb: 450 }, ratios: { latency_ms_p95: iv(900 / 140, 5.5, 7.5), peak_rss_mb: iv(450 / 210) }, code: 'limit_exceeded', reason: /latency_ms_p95 900 is above the limit 500; peak_rss_mb 450 is above the limit 400/ },
    { name: 'a saturated machine: candidate and stable measured side by side both over the latency limit → the ratio judges', candidate: { miou: 0.695, latency_ms_p95: 560, peak_rss_mb: 210 }, stable: { miou: 0.675, latency_ms_p95: 620, peak_rss_mb: 210 }, ratios: { latency_ms_p95: iv(0.9, 0.8, 1.0), peak_rss_mb: iv(1) }, code: 'beats_stable', reason: /^Accepted: miou 0.695 vs 0.675 \(0.02\) better than the stable, and latency_ms_p95, peak_rss_mb stay within tolerance \(latency_ms_p95 560 is over the limit 500, but the stable measured beside it is at 620 too, so the machine is over the limit; the ratio to the stable judges latency_ms_p95\)\.$/ },
    { name: 'a saturated machine does not excuse a slower candidate: the ratio beyond tolerance → worse', candidate: { miou: 0.695, latency_ms_p95: 1200, peak_rss_mb: 210 }, stable: { miou: 0.675, latency_ms_p95: 620, peak_rss_mb: 210 }, ratios: { latency_ms_p95: iv(1.9, 1.7, 2.1), peak_rss_mb: iv(1) }, code: 'worse_than_stable', reason: /^Not promoted: latency_ms_p95 ×1.90/ },
    { name: 'the stable within the limit, the candidate over it: the limit applies', candidate: { miou: 0.695, latency_ms_p95: 560, peak_rss_mb: 210 }, stable: { miou: 0.675, latency_ms_p95: 480, peak_rss_mb: 210 }, ratios: { latency_ms_p95: iv(1.17, 1.1, 1.2), peak_rss_mb: iv(1) }, code: 'limit_exceeded', reason: /^Not promoted: latency_ms_p95 560 is above the limit 500\.$/ },
    { name: 'a saturated machine, the stable just within the limit and the candidate over it, the interval reaching ×0.90: not decisively over → the ratio judges', candidate: { miou: 0.695, latency_ms_p95: 566, peak_rss_mb: 186 }, stable: { miou: 0.675, latency_ms_p95: 477, peak_rss_mb: 186 }, ratios: { latency_ms_p95: iv(1.19, 0.9, 2.47), peak_rss_mb: iv(1) }, code: 'beats_stable', reason: /^Accepted: miou 0.695 vs 0.675 \(0.02\) better than the stable, and latency_ms_p95, peak_rss_mb stay within tolerance \(latency_ms_p95 566 is over the limit 500, but with the stable measured beside it at 477 and the ratio ×1.19 \(90 % interval ×0.90–×2.47, 72 pairs\), it may be at 429.3, within the limit: not decisively over it; the ratio to the stable judges latency_ms_p95\)\.$/ },
    { name: 'the stable within the limit, the candidate decisively over it (stable × the interval\'s low end > the limit): the limit applies', candidate: { miou: 0.695, latency_ms_p95: 900, peak_rss_mb: 186 }, stable: { miou: 0.675, latency_ms_p95: 400, peak_rss_mb: 186 }, ratios: { latency_ms_p95: iv(2.25, 1.3, 3), peak_rss_mb: iv(1) }, code: 'limit_exceeded', reason: /^Not promoted: latency_ms_p95 900 is above the limit 500\.$/ },
    { name: 'no paired ratio (no measurement beside it): the limit applies even if the stable is over it', candidate: { miou: 0.695, latency_ms_p95: 560, peak_rss_mb: 210 }, stable: { miou: 0.675, latency_ms_p95: 620, peak_rss_mb: 210 }, ratios: { peak_rss_mb: iv(1) }, code: 'limit_exceeded', reason: /latency_ms_p95 560 is above the limit 500/ },
    { name: 'claims measured elsewhere still meet the mIoU floor', candidate: { miou: 0.6, latency_ms_p95: 900, peak_rss_mb: 450 }, ratios: { latency_ms_p95: iv(0.5), peak_rss_mb: iv(0.9) }, elsewhere: true, code: 'limit_exceeded', reason: /^Not promoted: miou 0.6 is below the minimum 0.65\.$/ },
  ];
  it.each(rows)('$name', ({ candidate, stable, ratios, elsewhere, code, reason }) => {
    const v = evaluatePolicy(mb, candidate, stable ?? st, { ratios, measuredElsewhere: elsewhere ?? false });
    expect(v.code).toBe(code);
    expect(v.reason).toMatch(reason);
  });

  it.each([0.5, 2])('figures from another machine (both sides × %d) give the same verdict', (factor) => {
    const candidate = cand(0.695, 0.97);
    const here = evaluatePolicy(mb, candidate, st, { ratios: { latency_ms_p95: iv(0.97, 0.9, 1.05), peak_rss_mb: iv(1) } });
    const scale = (m: Metrics): Metrics => ({ ...m, latency_ms_p95: (m['latency_ms_p95'] as number) * factor, peak_rss_mb: (m['peak_rss_mb'] as number) * factor });
    const there = evaluatePolicy(mb, scale(candidate), scale(st), { ratios: { latency_ms_p95: iv(0.97, 0.9, 1.05), peak_rss_mb: iv(1) }, measuredElsewhere: true });
    expect([here.code, there.code]).toEqual(['beats_stable', 'beats_stable']);
  });

  const claimRows: { name: string; claimed: number; measured?: RatioInterval; ok: boolean; code: string; reason: RegExp }[] = [
    { name: 'claimed ×1.00, measured ×1.02 [0.95, 1.10]', claimed: 1, measured: iv(1.02, 0.95, 1.1), ok: true, code: 'claims_reproduced', reason: /^The claimed miou, latency_ms_p95 ratio reproduce on the golden set\.$/ },
    { name: 'claimed ×1.00, busy: measured ×1.60 [1.45, 1.80] reaches into the band', claimed: 1, measured: iv(1.6, 1.45, 1.8), ok: true, code: 'claims_reproduced', reason: /reproduce/ },
    { name: 'claimed ×1.00, measured ×1.70 [1.60, 1.80]: wholly beyond ×1.50', claimed: 1, measured: iv(1.7, 1.6, 1.8), ok: false, code: 'claim_not_reproduced', reason: /^Rejected: the claim does not reproduce on the golden set: latency_ms_p95 measured ×1.70 \(90 % interval ×1.60–×1.80, 72 pairs\) of the stable against a claimed ×1.00 \(tolerance 50%: up to ×1.50\)\.$/ },
    { name: 'a lie: claimed ×0.50, measured ×1.00', claimed: 0.5, measured: iv(1, 0.95, 1.05), ok: false, code: 'claim_not_reproduced', reason: /claimed ×0.50 \(tolerance 50%: up to ×0.75\)/ },
    { name: 'measured faster than claimed', claimed: 1, measured: iv(0.6, 0.55, 0.66), ok: true, code: 'claims_reproduced', reason: /reproduce/ },
    { name: 'no measured ratio', claimed: 1, ok: false, code: 'measurement_missing', reason: /^Rejected: latency_ms_p95 could not be measured on the golden set\.$/ },
  ];
  it.each(claimRows)('ratio claim: $name', ({ claimed, measured, ok, code, reason }) => {
    const v = checkClaims(mb, { miou: 0.695, latency_ms_p95: 900 }, { miou: 0.695, latency_ms_p95: 140 }, { claimedRatios: { latency_ms_p95: claimed }, measuredRatios: measured ? { latency_ms_p95: measured } : {} });
    expect({ ok: v.ok, code: v.code }).toEqual({ ok, code });
    expect(v.reason).toMatch(reason);
    const figure = v.figures.find((f) => f.metric === 'latency_ms_p95');
    expect(figure).toMatchObject({ kind: 'ratio', claimed, band: { low: null, high: claimed * 1.5 } });
  });

  it('claims measured elsewhere with no stable to pair with: the cost claims are not compared with this machine', () => {
    const v = checkClaims(mb, { miou: 0.695, latency_ms_p95: 900, peak_rss_mb: 50 }, { miou: 0.695, latency_ms_p95: 140, peak_rss_mb: 210 }, { claimedRatios: { latency_ms_p95: 1 }, measuredElsewhere: true });
    expect(v).toMatchObject({ ok: true, code: 'claims_reproduced', reason: 'The claimed miou reproduces on the golden set.' });
  });

  it('without a claimed ratio (a result in the first form) the absolute figures are compared, as before', () => {
    const v = checkClaims(mb, { miou: 0.695, latency_ms_p95: 145.7 }, { miou: 0.695, latency_ms_p95: 225.4 });
    expect(v).toMatchObject({ ok: false, code: 'claim_not_reproduced' });
    expect(v.reason).toMatch(/latency_ms_p95 measured 225.4 against a claimed 145.7 \(off by 54.7\d*%, tolerance 50%\)/);
  });
});

describe('fmt', () => {
  it.each([
    [0.81234567, '0.8123'],
    [412.53, '412.5'],
    [5, '5'],
    [1.23456, '1.235'],
    [Number.NaN, 'NaN'],
  ])('%d → %s', (x, s) => {
    expect(fmt(x)).toBe(s);
  });
});
