// The gateway's Prometheus metrics. Names and labels are a contract (docs/architecture.md#metrics): dashboards,
// alerts and the promoter's canary analysis query them.
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Track } from '@segserve/proto';
import type { LedgerSnapshot } from '@segserve/runtime';

export type Protocol = 'rest' | 'grpc' | 'oip';

export interface RequestObservation {
  readonly protocol: Protocol;
  /** '' when the request named no model the gateway routes (keeps label cardinality bounded). */
  readonly model: string;
  /** The version that served the request; '' when none did. */
  readonly version: string;
  /** 'OK' or an error code from the table. */
  readonly code: string;
  readonly seconds: number;
}

export class GatewayMetrics {
  readonly registry = new Registry();
  readonly #requests: Counter<'protocol' | 'model' | 'version' | 'code'>;
  readonly #duration: Histogram<'protocol' | 'model' | 'version'>;
  readonly #retries: Counter;
  readonly #routeWeight: Gauge<'model' | 'track'>;
  readonly #memory: Gauge<'kind'>;

  constructor() {
    collectDefaultMetrics({ register: this.registry });
    this.#requests = new Counter({
      name: 'segserve_gateway_requests_total',
      help: 'Requests through the gateway by protocol, model, serving version and result code.',
      labelNames: ['protocol', 'model', 'version', 'code'],
      registers: [this.registry],
    });
    this.#duration = new Histogram({
      name: 'segserve_gateway_request_duration_seconds',
      help: 'Time from request to response at the gateway, upload included.',
      labelNames: ['protocol', 'model', 'version'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: [this.registry],
    });
    this.#retries = new Counter({
      name: 'segserve_gateway_upstream_retries_total',
      help: 'Upstream call attempts beyond the first (gRPC retry policy, UNAVAILABLE only).',
      registers: [this.registry],
    });
    this.#routeWeight = new Gauge({
      name: 'segserve_gateway_route_weight',
      help: 'Percentage of requests routed to each track of a model.',
      labelNames: ['model', 'track'],
      registers: [this.registry],
    });
    this.#memory = new Gauge({
      name: 'segserve_gateway_upload_memory_bytes',
      help: 'The memory budget for uploads (kind="budget") and what uploads and answers in flight hold of it (kind="held").',
      labelNames: ['kind'],
      registers: [this.registry],
    });
  }

  setMemory(s: LedgerSnapshot): void {
    this.#memory.set({ kind: 'budget' }, s.capacity);
    this.#memory.set({ kind: 'held' }, s.held);
  }

  observeRequest(o: RequestObservation): void {
    this.#requests.inc({ protocol: o.protocol, model: o.model, version: o.version, code: o.code });
    this.#duration.observe({ protocol: o.protocol, model: o.model, version: o.version }, o.seconds);
  }

  countRetries(n: number): void {
    if (n > 0) this.#retries.inc(n);
  }

  setRouteWeight(model: string, track: Track, percent: number): void {
    this.#routeWeight.set({ model, track }, percent);
  }

  forgetModel(model: string): void {
    this.#routeWeight.remove({ model, track: 'stable' });
    this.#routeWeight.remove({ model, track: 'canary' });
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  render(): Promise<string> {
    return this.registry.metrics();
  }
}
