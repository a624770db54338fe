import { describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { canonicalJson, type ExperimentResult } from '@segserve/proto';
import { claimedRatios, defaultExperimentId, judgeClaims, modelFromSubject, readResultMessage, toCandidate, type StableClaims } from './experiment-result.js';
import { parsePolicyText } from './policy.js';

const result: ExperimentResult = {
  id: 'facade-ads-3-0123456789ab',
  model: 'facade-ads',
  version: '3',
  artifact: { sha256: 'a'.repeat(64), size: 1234 },
  metrics: { miou: 0.81, latency_ms_p95: 420.5, peak_rss_mb: 250 },
  golden: { sha256: 'b'.repeat(64) },
  source: { commit: 'abc123', pipeline: '42', job: 'experiment' },
  created_at: '2026-11-27T10:00:00.000Z',
};
const known = new Set(['facade-ads']);
const body = (v: unknown) => new TextEncoder().encode(JSON.stringify(v));

describe('modelFromSubject', () => {
  it.each([
    ['segserve.experiments.facade-ads', 'facade-ads'],
    ['segserve.experiments.Facade', null],
    ['segserve.experiments.a.b', null],
    ['segserve.rollouts.facade-ads', null],
  ])('%s → %s', (subject, model) => {
    expect(modelFromSubject(subject)).toBe(model);
  });
});

describe('readResultMessage', () => {
  const ok = { subject: 'segserve.experiments.facade-ads', msgId: result.id, body: body(result) };
  it('accepts a well-formed result on its subject with its id as Nats-Msg-Id', () => {
    expect(readResultMessage(ok, known)).toEqual({ ok: true, value: result });
  });
  it.each([
    ['a subject that is no model', { ...ok, subject: 'segserve.experiments.Bad_Name' }, 'subject_mismatch'],
    ['a model without policy', { ...ok, subject: 'segserve.experiments.other' }, 'unknown_model'],
    ['not JSON', { ...ok, body: new TextEncoder().encode('{oops') }, 'invalid_json'],
    ['a schema violation', { ...ok, body: body({ ...result, extra: true }) }, 'schema_invalid'],
    ['a NaN claim (1e999)', { ...ok, body: new TextEncoder().encode(JSON.stringify(result).replace('0.81', '1e999')) }, 'schema_invalid'],
    ['a body for another model', { ...ok, body: body({ ...result, model: 'other' }) }, 'subject_mismatch'],
    ['a missing Nats-Msg-Id', { ...ok, msgId: undefined }, 'id_mismatch'],
    ['a different Nats-Msg-Id', { ...ok, msgId: 'x' }, 'id_mismatch'],
  ])('rejects %s', (_name, message, code) => {
    const checked = readResultMessage(message, known);
    expect(checked.ok).toBe(false);
    if (!checked.ok) {
      expect(checked.rejection.code).toBe(code);
      expect(checked.rejection.stage).toBe('schema');
      expect(checked.rejection.reason).toMatch(/^Rejected: .*\.$/);
    }
  });
});

describe('toCandidate', () => {
  it('carries id, ref, claims and golden digest', () => {
    expect(toCandidate(result)).toEqual({
      id: result.id,
      ref: { model: 'facade-ads', version: '3', sha256: 'a'.repeat(64) },
      claimed: result.metrics,
      goldenSha256: 'b'.repeat(64),
    });
  });
});

describe('defaultExperimentId', () => {
  const { id: _id, created_at: _at, ...content } = result;
  it('is stable for the same content and ignores created_at', () => {
    expect(defaultExperimentId(content)).toBe(defaultExperimentId({ ...content }));
    expect(defaultExperimentId(content)).toMatch(/^facade-ads-3-[0-9a-f]{12}$/);
  });
  it('changes with the claims, the artifact or the CI job', () => {
    const ids = new Set([
      defaultExperimentId(content),
      defaultExperimentId({ ...content, metrics: { ...content.metrics, miou: 0.9 } }),
      defaultExperimentId({ ...content, artifact: { ...content.artifact, size: 1 } }),
      defaultExperimentId({ ...content, source: { ...content.source, job: 'other' } }),
    ]);
    expect(ids.size).toBe(4);
  });
  it('a baseline changes the id; a result without one keeps the id it always had', () => {
    // The digest as it was computed before results could carry a baseline.
    const before = createHash('sha256').update(canonicalJson({ model: content.model, version: content.version, artifact: content.artifact, metrics: content.metrics, golden: content.golden, source: content.source })).digest('hex');
    expect(defaultExperimentId(content)).toBe(`facade-ads-3-${before.slice(0, 12)}`);
    expect(defaultExperimentId({ ...content, baseline: { version: '2', sha256: 'c'.repeat(64), metrics: { miou: 0.8 } } })).not.toBe(defaultExperimentId(content));
  });
  it('makes a valid id from a dotted version', () => {
    expect(defaultExperimentId({ ...content, version: '2026-11-27.1' })).toMatch(/^facade-ads-2026-11-27_1-[0-9a-f]{12}$/);
  });
});

describe('judgeClaims: the policy on the claims, first and second form', () => {
  // The bundled policy: latency and memory machine-bound.
  const policy = parsePolicyText(readFileSync(fileURLToPath(new URL('../../policies/facade-ads.yaml', import.meta.url)), 'utf8'));
  const stable: StableClaims = { model: 'facade-ads', version: '2', sha256: 'c'.repeat(64), claims: { miou: 0.6754, latency_ms_p95: 141.4, peak_rss_mb: 211.2 } };
  /** v3 against v2 measured on some machine, every cost figure of both sides × `factor`. */
  const v2Form = (miou: number, latencyRatio: number, factor: number, baseline = stable.sha256): ExperimentResult => ({
    ...result,
    schema_version: 2,
    metrics: { miou, latency_ms_p95: 145 * latencyRatio * factor, peak_rss_mb: 209 * factor },
    baseline: { version: '2', sha256: baseline, metrics: { miou: 0.6754, latency_ms_p95: 145 * factor, peak_rss_mb: 210 * factor }, intervals: { latency_ms_p95: [latencyRatio * 0.93, latencyRatio * 1.08] }, pairs: 72 },
  });

  it('first form: the claimed figures against the stable\'s recorded ones, as before', () => {
    const j = judgeClaims(policy, { ...result, metrics: { miou: 0.6949, latency_ms_p95: 145.7, peak_rss_mb: 209.1 } }, stable);
    expect(j).toMatchObject({ ok: true, ratios: null, verdict: { accepted: true, code: 'beats_stable' } });
    // Measured on a machine twice as slow, an honest first-form claim breaks the latency limit.
    const slow = judgeClaims(policy, { ...result, metrics: { miou: 0.6949, latency_ms_p95: 600, peak_rss_mb: 209.1 } }, stable);
    expect(slow).toMatchObject({ ok: true, verdict: { accepted: false, code: 'limit_exceeded' } });
  });

  it.each([0.5, 1, 2])('second form from a machine × %d: a better candidate is accepted, a costlier one refused', (factor) => {
    const better = judgeClaims(policy, v2Form(0.6949, 1.01, factor), stable);
    expect(better).toMatchObject({ ok: true, verdict: { accepted: true, code: 'beats_stable' } });
    if (better.ok) expect(better.ratios?.['latency_ms_p95']).toMatchObject({ ratio: expect.closeTo(1.01, 9), samples: 72 });
    const costlier = judgeClaims(policy, v2Form(0.6949, 2.5, factor), stable);
    expect(costlier).toMatchObject({ ok: true, verdict: { accepted: false, code: 'worse_than_stable' } });
    if (!costlier.ok) return;
    expect(costlier.verdict.reason).toMatch(/^Not promoted: latency_ms_p95 ×2.50 \(90 % interval ×2.33–×2.70, 72 pairs\) of the stable is worse than the tolerance 25%\.$/);
    const worseMiou = judgeClaims(policy, v2Form(0.5951, 0.25, factor), stable);
    expect(worseMiou).toMatchObject({ ok: true, verdict: { accepted: false, code: 'limit_exceeded' } });
  });

  it('second form against a baseline that is not the stable → baseline_not_stable', () => {
    const j = judgeClaims(policy, v2Form(0.6949, 1, 1, 'd'.repeat(64)), stable);
    expect(j).toMatchObject({ ok: false, rejection: { stage: 'policy', code: 'baseline_not_stable', details: { baseline: { sha256: 'd'.repeat(64) }, stable: { version: '2' } } } });
    if (!j.ok) expect(j.rejection.reason).toBe('Rejected: the claims are ratios to 2 (model.onnx dddddddddddd), but the stable is 2 (cccccccccccc); measure against the stable with segserve eval --against.');
  });

  it('second form without a stable (first model): the limits on hardware-independent figures alone', () => {
    expect(judgeClaims(policy, v2Form(0.6949, 1, 2), null)).toMatchObject({ ok: true, verdict: { accepted: true, code: 'first_model_within_limits' } });
  });

  it('claimedRatios: every metric both sides carry, with the claimed interval', () => {
    const r = claimedRatios(v2Form(0.6949, 1.2, 2));
    expect(Object.keys(r).sort()).toEqual(['latency_ms_p95', 'miou', 'peak_rss_mb']);
    expect(r['latency_ms_p95']).toMatchObject({ ratio: expect.closeTo(1.2, 9), low: expect.closeTo(1.116, 9), high: expect.closeTo(1.296, 9), samples: 72 });
    expect(r['peak_rss_mb']).toMatchObject({ samples: 0 });
    expect(claimedRatios(result)).toEqual({});
  });

  it('toCandidate carries the baseline', () => {
    expect(toCandidate(v2Form(0.69, 1, 1)).baseline).toMatchObject({ version: '2', sha256: stable.sha256 });
  });
});
