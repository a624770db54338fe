import { describe, expect, it } from 'vitest';
import type { ExperimentResult } from '@segserve/proto';
import { defaultExperimentId, modelFromSubject, readResultMessage, toCandidate } from './experiment-result.js';

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
  it('makes a valid id from a dotted version', () => {
    expect(defaultExperimentId({ ...content, version: '2026-11-27.1' })).toMatch(/^facade-ads-2026-11-27_1-[0-9a-f]{12}$/);
  });
});
