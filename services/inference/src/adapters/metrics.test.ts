import { describe, expect, it } from 'vitest';
import { InferenceMetrics } from './metrics.js';

describe('InferenceMetrics', () => {
  it('exposes a served version with its OK series at 0 before any request', async () => {
    const metrics = new InferenceMetrics({ defaults: false });
    metrics.servingModel('facade-ads', '3', 'a'.repeat(64));
    const text = await metrics.registry.metrics();
    expect(text).toContain(`segserve_model_info{model="facade-ads",version="3",sha256="${'a'.repeat(64)}"} 1`);
    expect(text).toContain('segserve_inference_requests_total{model="facade-ads",version="3",code="OK"} 0');
  });
});
