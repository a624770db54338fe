import { describe, expect, it } from 'vitest';
import { canonicalJson, decodeExperimentResult, parseExperimentResult, type ExperimentResult } from './experiment-result.js';

const VALID: ExperimentResult = {
  id: 'facade-ads-3-0123456789ab',
  model: 'facade-ads',
  version: '3',
  artifact: { sha256: 'a'.repeat(64), size: 1234 },
  metrics: { miou: 0.81, latency_ms_p95: 420.5, peak_rss_mb: 250 },
  golden: { sha256: 'b'.repeat(64) },
  source: { commit: 'abc123', pipeline: '42', job: 'experiment' },
  created_at: '2026-11-27T10:00:00.000Z',
};

describe('parseExperimentResult', () => {
  it('accepts a valid result', () => {
    expect(parseExperimentResult(structuredClone(VALID))).toEqual(VALID);
  });

  const rows: [string, (r: Record<string, unknown>) => void, RegExp][] = [
    ['an unknown top-level field', (r) => (r['extra'] = 1), /must NOT have additional properties 'extra'/],
    ['an unknown artifact field', (r) => ((r['artifact'] as Record<string, unknown>)['url'] = 'x'), /artifact must NOT have additional properties 'url'/],
    ['a missing field', (r) => delete r['golden'], /must have required property 'golden'/],
    ['a path-traversal model name', (r) => (r['model'] = '../x'), /model must match pattern/],
    ['a path-traversal version', (r) => (r['version'] = '../3'), /version must match pattern/],
    ['a bad id', (r) => (r['id'] = 'a b'), /id must match pattern/],
    ['a NaN metric', (r) => ((r['metrics'] as Record<string, unknown>)['miou'] = Number.NaN), /metrics.miou not a finite number/],
    ['an infinite metric', (r) => ((r['metrics'] as Record<string, unknown>)['latency_ms_p95'] = Number.POSITIVE_INFINITY), /metrics.latency_ms_p95 not a finite number/],
    ['a string metric', (r) => ((r['metrics'] as Record<string, unknown>)['miou'] = '0.9'), /metrics.miou must be number/],
    ['a bad metric name', (r) => ((r['metrics'] as Record<string, unknown>)['Bad-Name'] = 1), /property name must be valid/],
    ['mIoU over 1', (r) => ((r['metrics'] as Record<string, unknown>)['miou'] = 1.5), /metrics.miou must be <= 1/],
    ['a short digest', (r) => ((r['artifact'] as Record<string, unknown>)['sha256'] = 'abc'), /artifact.sha256 must match pattern/],
    ['a fractional size', (r) => ((r['artifact'] as Record<string, unknown>)['size'] = 1.5), /artifact.size must be integer/],
    ['a date without time zone', (r) => (r['created_at'] = '2026-11-27T10:00:00'), /created_at must match pattern/],
    ['a baseline in a result of the first form', (r) => (r['baseline'] = { version: '2', sha256: 'c'.repeat(64), metrics: {} }), /must have required property 'schema_version'/],
    ['schema_version 2 without a baseline', (r) => (r['schema_version'] = 2), /must have required property 'baseline'/],
    ['schema_version 3', (r) => (r['schema_version'] = 3), /schema_version must be equal to one of the allowed values/],
    ['a baseline without the stable digest', (r) => Object.assign(r, { schema_version: 2, baseline: { version: '2', metrics: {} } }), /baseline must have required property 'sha256'/],
    ['an interval that is not a pair', (r) => Object.assign(r, { schema_version: 2, baseline: { version: '2', sha256: 'c'.repeat(64), metrics: {}, intervals: { latency_ms_p95: [1] } } }), /baseline.intervals.latency_ms_p95 must NOT have fewer than 2 items/],
  ];
  const V2 = { ...VALID, schema_version: 2, baseline: { version: '2', sha256: 'c'.repeat(64), metrics: { miou: 0.79, latency_ms_p95: 410, peak_rss_mb: 251 }, intervals: { latency_ms_p95: [0.95, 1.08] }, pairs: 72 } } as const;
  it('accepts the second form: claims with the stable measured in the same run', () => {
    expect(parseExperimentResult(structuredClone(V2))).toEqual(V2);
    expect(parseExperimentResult({ ...structuredClone(VALID), schema_version: 1 })).toMatchObject({ schema_version: 1 });
  });
  rows.push(
    ['a NaN in the baseline', (r) => Object.assign(r, { schema_version: 2, baseline: { version: '2', sha256: 'c'.repeat(64), metrics: { latency_ms_p95: Number.NaN } } }), /baseline.metrics.latency_ms_p95 not a finite number/],
  );
  it.each(rows)('rejects %s', (_name, mutate, message) => {
    const r = structuredClone(VALID) as unknown as Record<string, unknown>;
    mutate(r);
    expect(() => parseExperimentResult(r)).toThrow(message);
  });
});

describe('decodeExperimentResult', () => {
  const enc = (s: string) => new TextEncoder().encode(s);
  it('decodes UTF-8 JSON', () => {
    expect(decodeExperimentResult(enc(JSON.stringify(VALID))).id).toBe(VALID.id);
  });
  it.each([
    ['NaN literal', '{"miou": NaN}', /not UTF-8 JSON/],
    ['1e999 (parses to Infinity)', JSON.stringify(VALID).replace('420.5', '1e999'), /metrics.latency_ms_p95 not a finite number/],
    ['truncated', JSON.stringify(VALID).slice(0, 40), /not UTF-8 JSON/],
    ['an array', '[]', /must be object/],
  ])('rejects %s', (_name, text, message) => {
    expect(() => decodeExperimentResult(enc(text))).toThrow(message);
  });
  it('rejects invalid UTF-8 and oversized bodies', () => {
    expect(() => decodeExperimentResult(new Uint8Array([0x7b, 0xff, 0x7d]))).toThrow(/not UTF-8 JSON/);
    expect(() => decodeExperimentResult(new Uint8Array(70_000))).toThrow(/over the 65536-byte limit/);
  });
});

describe('canonicalJson (RFC 8785)', () => {
  it.each([
    [{ b: 1, a: [true, null, 'x'] }, '{"a":[true,null,"x"],"b":1}'],
    [{ nested: { z: 0.1, y: 1e21, x: -0 } }, '{"nested":{"x":0,"y":1e+21,"z":0.1}}'],
    [{ '\u00e9': 1, e: 2, E: 3 }, '{"E":3,"e":2,"\u00e9":1}'],
    [{ s: 'line\nbreak "quoted"' }, '{"s":"line\\nbreak \\"quoted\\""}'],
    [{ skip: undefined, keep: 1 }, '{"keep":1}'],
  ])('%j → %s', (value, text) => {
    expect(canonicalJson(value)).toBe(text);
  });
  it('is independent of key order and whitespace of the source', () => {
    const reordered = JSON.parse(JSON.stringify({ ...VALID, metrics: { peak_rss_mb: 250, miou: 0.81, latency_ms_p95: 420.5 } }, null, 2)) as unknown;
    expect(canonicalJson(reordered)).toBe(canonicalJson(VALID));
  });
  it('refuses non-finite numbers', () => {
    expect(() => canonicalJson({ x: Number.NaN })).toThrow(/non-finite/);
  });
});
