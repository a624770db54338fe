// Prometheus metrics of an inference process. The names are a contract (docs/architecture.md#metrics):
// dashboards, alerts and the promoter's canary analysis query exactly these.

import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { STAGES, type StageTimings } from '../domain/stages.js';

/** 1 ms … 10 s: a tiny model's decode to a full-size PSPNet run behind a long queue. */
export const DURATION_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export class InferenceMetrics {
  readonly registry: Registry;
  readonly requests: Counter<'model' | 'version' | 'code'>;
  readonly duration: Histogram<'model' | 'version' | 'stage'>;
  readonly queueDepth: Gauge;
  readonly inFlight: Gauge;
  readonly modelInfo: Gauge<'model' | 'version' | 'sha256'>;
  readonly modelLoadSeconds: Gauge;
  readonly memoryLimitBytes: Gauge;
  readonly memoryBudgetBytes: Gauge;
  readonly admittedBytes: Gauge;
  readonly ortArena: Gauge;
  readonly abandoned: Gauge;

  constructor(options: { defaults?: boolean; abandoned?: () => number } = {}) {
    this.registry = new Registry();
    const registers = [this.registry];
    if (options.defaults !== false) collectDefaultMetrics({ register: this.registry });
    this.requests = new Counter({ name: 'segserve_inference_requests_total', help: 'Segment and ModelInfer requests by result code (OK or a segserve error code).', labelNames: ['model', 'version', 'code'], registers });
    this.duration = new Histogram({ name: 'segserve_inference_duration_seconds', help: 'Time per request stage; stage="total" is the whole request.', labelNames: ['model', 'version', 'stage'], buckets: DURATION_BUCKETS, registers });
    this.queueDepth = new Gauge({ name: 'segserve_inference_queue_depth', help: 'Requests waiting for an inference slot.', registers });
    this.inFlight = new Gauge({ name: 'segserve_inference_in_flight', help: 'Requests holding an inference slot.', registers });
    this.modelInfo = new Gauge({ name: 'segserve_model_info', help: 'The model version this process serves (value 1).', labelNames: ['model', 'version', 'sha256'], registers });
    this.modelLoadSeconds = new Gauge({ name: 'segserve_model_load_seconds', help: 'Time to fetch, verify, load and warm up the model.', registers });
    this.memoryLimitBytes = new Gauge({ name: 'segserve_memory_limit_bytes', help: 'Memory limit of this container (cgroup), or the host memory when none is set.', registers });
    this.memoryBudgetBytes = new Gauge({ name: 'segserve_inference_memory_budget_bytes', help: 'Bytes admitted requests may hold at once: the memory limit less headroom, the measured baseline and the model runs.', registers });
    this.admittedBytes = new Gauge({ name: 'segserve_inference_admitted_bytes', help: 'Bytes charged to running and queued requests and to abandoned work still under way.', registers });
    this.ortArena = new Gauge({ name: 'segserve_inference_ort_arena', help: "1 when the served model's onnxruntime sessions run with the CPU arena (SEGSERVE_ORT_ARENA; auto: small measured activations), else 0.", registers });
    const abandoned = options.abandoned;
    this.abandoned = new Gauge({
      name: 'segserve_inference_abandoned_in_flight',
      help: 'Work whose caller went away but which cannot be interrupted (a decode, an encode or a model run): CPU still being spent.',
      registers,
      ...(abandoned ? { collect(this: Gauge) { this.set(abandoned()); } } : {}),
    });
  }

  /**
   * Publishes the served version and creates its OK request series at 0, so that the first
   * scrape of a fresh canary already has the series and `increase()` counts its first requests
   * (without it one canary check in the end-to-end rollout held for want of samples).
   */
  servingModel(model: string, version: string, sha256: string): void {
    this.modelInfo.set({ model, version, sha256 }, 1);
    this.requests.inc({ model, version, code: 'OK' }, 0);
  }

  observe(model: string, version: string, code: string, timingsMs: StageTimings): void {
    this.requests.inc({ model, version, code });
    for (const stage of STAGES) {
      const ms = timingsMs[stage];
      if (ms !== undefined) this.duration.observe({ model, version, stage }, ms / 1000);
    }
  }
}
