// A real Prometheus scrapes an inference process: the contract names (docs/architecture.md#metrics) arrive
// with their labels and the queries dashboards and the promoter use evaluate.

import { describe, expect, it } from 'vitest';
import { startPrometheus } from '../helpers/prometheus.js';
import { MODELS, png, segment, startTestServer, syntheticImage } from './helpers.js';

describe('Prometheus scraping an inference process', () => {
  it('sees request counts by code, stage latencies and the model info', async () => {
    await using server = await startTestServer({ model: MODELS.seg });
    const image = await png(syntheticImage(64, 48, 2));
    for (let i = 0; i < 3; i++) expect((await segment(server.clients, image)).value?.width).toBe(64);
    expect((await segment(server.clients, image, { model: 'other' })).code).toBe('MODEL_NOT_FOUND');
    await using prom = await startPrometheus({ targets: [{ job: 'inference', targets: [`127.0.0.1:${server.proc.metricsPort}`] }], scrapeIntervalSeconds: 1 });
    const ok = await prom.waitForSeries('segserve_inference_requests_total{job="inference",code="OK",model="tiny-seg",version="1"}');
    expect(ok[0]!.value).toBe(3);
    expect((await prom.waitForSeries('segserve_inference_requests_total{code="MODEL_NOT_FOUND"}'))[0]!.value).toBe(1);
    const p95 = await prom.waitForSeries('histogram_quantile(0.95, sum by (le, stage) (segserve_inference_duration_seconds_bucket{stage="total"}))');
    expect(p95[0]!.value).toBeGreaterThan(0);
    expect(p95[0]!.value).toBeLessThanOrEqual(10);
    const info = await prom.waitForSeries('segserve_model_info');
    expect(info[0]!.metric['sha256']).toMatch(/^[0-9a-f]{64}$/);
    const rssRatio = await prom.waitForSeries('process_resident_memory_bytes / segserve_memory_limit_bytes');
    expect(rssRatio[0]!.value).toBeGreaterThan(0);
    expect(rssRatio[0]!.value).toBeLessThan(1);
  });
});
