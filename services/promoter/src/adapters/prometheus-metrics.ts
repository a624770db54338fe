// MetricsSource over the Prometheus HTTP API: PromQL on the inference metrics of docs/architecture.md#metrics,
// selected by model and version (each track runs one version). Process-level series
// (`process_resident_memory_bytes`, `segserve_memory_limit_bytes`) carry no model label, so
// they are joined to `segserve_model_info{model,version}` on the scrape instance.
import type { Track } from '@segserve/proto';
import type { MetricsSource, TrackMetrics } from '../domain/ports.js';
import { SERVER_ERROR_CODES } from './prometheus-text.js';

export interface PrometheusMetricsOptions {
  /** Base URL, e.g. http://prometheus:9090 */
  readonly url: string;
  /**
   * Shortest range a query uses (s): a range must hold at least two scrapes for rate() and
   * increase() to answer, so keep it ≥ 2 × the scrape interval (default 30 s).
   */
  readonly minWindowSeconds?: number;
  readonly timeoutMs?: number;
}

interface QueryResponse {
  readonly status: string;
  readonly error?: string;
  readonly data?: { readonly resultType: string; readonly result: readonly { readonly value: readonly [number, string] }[] };
}

/** A PromQL string literal. */
function lit(s: string): string {
  return JSON.stringify(s);
}

export class PrometheusMetrics implements MetricsSource {
  readonly name = 'prometheus';
  private readonly url: string;

  constructor(private readonly options: PrometheusMetricsOptions) {
    this.url = options.url.replace(/\/+$/, '');
  }

  async isOnline(): Promise<boolean> {
    try {
      const res = await fetch(`${this.url}/-/ready`, { signal: AbortSignal.timeout(this.options.timeoutMs ?? 5_000) });
      return res.ok;
    } catch {
      return false;
    }
  }

  /** The PromQL used for one track (exposed for tests and for the README). */
  queries(model: string, version: string, windowSeconds: number): Record<'requests' | 'errors' | 'p95' | 'rss' | 'limit', string> {
    const w = `${Math.max(Math.round(windowSeconds), this.options.minWindowSeconds ?? 30)}s`;
    const sel = `model=${lit(model)},version=${lit(version)}`;
    const info = `segserve_model_info{${sel}}`;
    return {
      requests: `sum(increase(segserve_inference_requests_total{${sel}}[${w}]))`,
      errors: `sum(increase(segserve_inference_requests_total{${sel},code=~${lit(SERVER_ERROR_CODES.join('|'))}}[${w}]))`,
      p95: `histogram_quantile(0.95, sum by (le) (rate(segserve_inference_duration_seconds_bucket{${sel},stage="total"}[${w}])))`,
      rss: `max(max_over_time(process_resident_memory_bytes[${w}]) and on (instance) ${info})`,
      limit: `min(segserve_memory_limit_bytes and on (instance) ${info})`,
    };
  }

  async trackMetrics(model: string, version: string, _track: Track, windowSeconds: number): Promise<TrackMetrics> {
    const q = this.queries(model, version, windowSeconds);
    const [requests, errors, p95, rss, limit] = await Promise.all([this.scalar(q.requests), this.scalar(q.errors), this.scalar(q.p95), this.scalar(q.rss), this.scalar(q.limit)]);
    return {
      // increase() extrapolates to the window edges; requests are whole.
      requests: Math.round(requests ?? 0),
      errors: Math.round(errors ?? 0),
      latencyP95Seconds: p95,
      rssBytes: rss,
      memoryLimitBytes: limit,
    };
  }

  /** The single value of an instant query; null for an empty result or NaN. */
  private async scalar(promql: string): Promise<number | null> {
    const res = await fetch(`${this.url}/api/v1/query?query=${encodeURIComponent(promql)}`, { signal: AbortSignal.timeout(this.options.timeoutMs ?? 10_000) });
    const body = (await res.json()) as QueryResponse;
    if (body.status !== 'success' || !body.data) throw new Error(`prometheus: ${body.error ?? `HTTP ${res.status}`} for ${promql}`);
    const first = body.data.result[0];
    if (!first) return null;
    const v = Number(first.value[1]);
    return Number.isFinite(v) ? v : null;
  }
}
