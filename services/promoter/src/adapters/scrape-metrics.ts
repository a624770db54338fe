// MetricsSource without Prometheus (the embedded default of the local stack): scrapes the
// inference processes' /metrics itself, keeps a short history of snapshots, and computes a
// window as the difference between the snapshot now and the one a window ago — counters and
// histogram buckets diffed per series (a counter that went down is a restarted process: its
// whole value counts, as in PromQL's increase()).
import type { Track } from '@segserve/proto';
import type { MetricsSource, TrackMetrics } from '../domain/ports.js';
import { SERVER_ERROR_CODES, histogramQuantile, matches, parsePrometheusText, type Sample } from './prometheus-text.js';

export interface ScrapeEndpoint {
  /** host:port of a /metrics endpoint. */
  readonly target: string;
  readonly model: string;
  readonly track: Track;
}

export interface ScrapeMetricsOptions {
  /** The live endpoints (the local deployer's processes). */
  readonly endpoints: () => readonly ScrapeEndpoint[];
  /** Background sampling period, so a window always has a start (ms, default 5000). */
  readonly sampleIntervalMs?: number;
  /** History kept per endpoint (ms, default 15 min). */
  readonly historyMs?: number;
  readonly timeoutMs?: number;
  readonly clock?: () => number;
}

interface Snapshot {
  readonly at: number;
  readonly samples: readonly Sample[];
}

const REQUESTS = 'segserve_inference_requests_total';
const DURATION = 'segserve_inference_duration_seconds';

function seriesKey(s: Sample): string {
  return `${s.name}${JSON.stringify(Object.entries(s.labels).sort(([a], [b]) => a.localeCompare(b)))}`;
}

/** Sum over matching series of (now − then), a series that went down counting from zero. */
function increase(now: readonly Sample[], then: readonly Sample[], pick: (s: Sample) => boolean): number {
  const before = new Map(then.filter(pick).map((s) => [seriesKey(s), s.value]));
  let total = 0;
  for (const s of now) {
    if (!pick(s)) continue;
    const b = before.get(seriesKey(s)) ?? 0;
    total += s.value >= b ? s.value - b : s.value;
  }
  return total;
}

function value(samples: readonly Sample[], name: string): number | null {
  const s = samples.find((x) => x.name === name);
  return s && Number.isFinite(s.value) ? s.value : null;
}

export class ScrapeMetrics implements MetricsSource {
  readonly name = 'scrape';
  private readonly history = new Map<string, Snapshot[]>();
  private timer: NodeJS.Timeout | undefined;
  private readonly clock: () => number;

  constructor(private readonly options: ScrapeMetricsOptions) {
    this.clock = options.clock ?? Date.now;
  }

  /** Starts background sampling. */
  start(): this {
    this.timer ??= setInterval(() => void this.sampleAll(), this.options.sampleIntervalMs ?? 5_000);
    this.timer.unref();
    void this.sampleAll();
    return this;
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  isOnline(): Promise<boolean> {
    return Promise.resolve(true);
  }

  async trackMetrics(model: string, version: string, track: Track, windowSeconds: number): Promise<TrackMetrics> {
    const endpoints = this.options.endpoints().filter((e) => e.model === model && e.track === track);
    const windowMs = windowSeconds * 1000;
    let requests = 0;
    let errors = 0;
    const buckets = new Map<number, number>();
    let rss: number | null = null;
    let limit: number | null = null;
    for (const e of endpoints) {
      const now = (await this.sample(e.target)) ?? this.recent(e.target);
      // No figures is no window: the check holds on "metrics unavailable" instead of judging 0 requests.
      if (!now) throw new Error(`${e.target}/metrics did not answer within ${this.timeoutMs / 1000} s and no recent sample is kept`);
      const base = this.baseline(e.target, now, windowMs);
      if (!base) continue;
      const mine = (s: Sample): boolean => s.labels['model'] === model && s.labels['version'] === version;
      requests += increase(now.samples, base.samples, (s) => s.name === REQUESTS && mine(s));
      errors += increase(now.samples, base.samples, (s) => s.name === REQUESTS && mine(s) && SERVER_ERROR_CODES.includes(s.labels['code'] ?? ''));
      for (const s of now.samples) {
        if (!matches(s, `${DURATION}_bucket`, { model, version, stage: 'total' }) || s.labels['le'] === undefined) continue;
        const le = s.labels['le'] === '+Inf' ? Infinity : Number(s.labels['le']);
        const d = increase([s], base.samples, () => true);
        buckets.set(le, (buckets.get(le) ?? 0) + d);
      }
      if (!now.samples.some((s) => matches(s, 'segserve_model_info', { model, version }))) continue;
      const window = (this.history.get(e.target) ?? []).filter((x) => x.at >= now.at - windowMs);
      for (const snap of window) {
        const r = value(snap.samples, 'process_resident_memory_bytes');
        if (r !== null) rss = Math.max(rss ?? 0, r);
      }
      const l = value(now.samples, 'segserve_memory_limit_bytes');
      if (l !== null && l > 0) limit = limit === null ? l : Math.min(limit, l);
    }
    return { requests, errors, latencyP95Seconds: histogramQuantile(0.95, buckets), latencyBuckets: buckets.size > 0 ? buckets : null, rssBytes: rss, memoryLimitBytes: limit };
  }

  /**
   * The snapshot a window ago; when the history is shorter, the oldest one; for a process that
   * started inside the window, zero (an empty snapshot).
   */
  private baseline(target: string, now: Snapshot, windowMs: number): Snapshot | undefined {
    const start = value(now.samples, 'process_start_time_seconds');
    if (start !== null && start * 1000 >= now.at - windowMs) return { at: start * 1000, samples: [] };
    const older = (this.history.get(target) ?? []).filter((x) => x.at < now.at);
    const atOrBefore = older.filter((x) => x.at <= now.at - windowMs);
    return atOrBefore.at(-1) ?? older[0];
  }

  /** The newest background sample, when a fresh scrape failed (a busy process answers late). */
  private recent(target: string): Snapshot | undefined {
    const last = this.history.get(target)?.at(-1);
    return last && this.clock() - last.at <= 2 * (this.options.sampleIntervalMs ?? 5_000) ? last : undefined;
  }

  private get timeoutMs(): number {
    return this.options.timeoutMs ?? 5_000;
  }

  private async sampleAll(): Promise<void> {
    await Promise.all(this.options.endpoints().map((e) => this.sample(e.target)));
  }

  private async sample(target: string): Promise<Snapshot | undefined> {
    try {
      const res = await fetch(`http://${target}/metrics`, { signal: AbortSignal.timeout(this.timeoutMs) });
      if (!res.ok) return undefined;
      const snap: Snapshot = { at: this.clock(), samples: parsePrometheusText(await res.text()) };
      const keep = this.clock() - (this.options.historyMs ?? 15 * 60_000);
      this.history.set(target, [...(this.history.get(target) ?? []).filter((x) => x.at >= keep), snap]);
      return snap;
    } catch {
      return undefined;
    }
  }
}
