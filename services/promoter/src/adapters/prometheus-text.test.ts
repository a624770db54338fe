import { describe, expect, it } from 'vitest';
import { bucketsOf, histogramQuantile, parsePrometheusText } from './prometheus-text.js';

const TEXT = `# HELP segserve_inference_requests_total Requests.
# TYPE segserve_inference_requests_total counter
segserve_inference_requests_total{model="m",version="2",code="OK"} 97
segserve_inference_requests_total{model="m",version="2",code="INTERNAL"} 3
process_resident_memory_bytes 123456789
weird{a="x\\"y",b="1,2"} 4 1700000000000
segserve_inference_duration_seconds_bucket{le="0.1",model="m",version="2",stage="total"} 50
segserve_inference_duration_seconds_bucket{le="0.5",model="m",version="2",stage="total"} 90
segserve_inference_duration_seconds_bucket{le="+Inf",model="m",version="2",stage="total"} 100
segserve_inference_duration_seconds_bucket{le="+Inf",model="m",version="2",stage="decode"} 100
`;

describe('parsePrometheusText', () => {
  it('reads samples with labels, escaped quotes, commas and timestamps; skips comments', () => {
    const samples = parsePrometheusText(TEXT);
    expect(samples).toHaveLength(8);
    expect(samples[0]).toEqual({ name: 'segserve_inference_requests_total', labels: { model: 'm', version: '2', code: 'OK' }, value: 97 });
    expect(samples[2]).toEqual({ name: 'process_resident_memory_bytes', labels: {}, value: 123456789 });
    expect(samples[3]).toEqual({ name: 'weird', labels: { a: 'x"y', b: '1,2' }, value: 4 });
  });
});

describe('histogramQuantile', () => {
  const rows: [string, [number, number][], number, number | null][] = [
    ['interpolates inside the bucket', [[0.1, 50], [0.5, 90], [Infinity, 100]], 0.5, 0.1],
    ['p95 in the +Inf bucket answers the highest finite bound', [[0.1, 50], [0.5, 90], [Infinity, 100]], 0.95, 0.5],
    ['p90 at a bucket edge', [[0.1, 50], [0.5, 90], [Infinity, 100]], 0.9, 0.5],
    ['first bucket interpolates from zero', [[0.1, 100], [Infinity, 100]], 0.95, 0.095],
    ['no observations', [[0.1, 0], [Infinity, 0]], 0.95, null],
  ];
  it.each(rows)('%s', (_name, buckets, q, expected) => {
    const v = histogramQuantile(q, new Map(buckets));
    if (expected === null) expect(v).toBeNull();
    else expect(v).toBeCloseTo(expected, 9);
  });

  it('sums matching bucket series by le', () => {
    const b = bucketsOf(parsePrometheusText(TEXT), 'segserve_inference_duration_seconds', { stage: 'total' });
    expect([...b.entries()]).toEqual([[0.1, 50], [0.5, 90], [Infinity, 100]]);
  });
});
