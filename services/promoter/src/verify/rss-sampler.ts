// Peak RSS of inference processes during a golden run, sampled from their Prometheus endpoint
// (`process_resident_memory_bytes`, prom-client's default metric, read from /proc at scrape
// time). Chosen over VmHWM because it needs only the /metrics address, which both drivers
// know (local: the process's port; Kubernetes: the pod), not a pid on this machine. Sampling
// every 250 ms can miss a spike shorter than that; the memory of a run is dominated by
// activations held for the whole inference (hundreds of ms), so the sampled peak is close.

const RSS_LINE = /^process_resident_memory_bytes(?:\{[^}]*\})?\s+([0-9.eE+-]+)/m;

/** `process_resident_memory_bytes` from a Prometheus text exposition, or null. */
export function parseRssBytes(text: string): number | null {
  const m = RSS_LINE.exec(text);
  const v = m ? Number(m[1]) : Number.NaN;
  return Number.isFinite(v) && v > 0 ? v : null;
}

export class RssSampler {
  private peakBytes: number | null = null;
  private timer: NodeJS.Timeout | undefined;
  private inFlight: Promise<void> = Promise.resolve();
  samples = 0;

  /** `endpoints` are `host:port` of /metrics servers (one process each). */
  constructor(
    private readonly endpoints: readonly string[],
    private readonly intervalMs = 250,
  ) {}

  get peakMb(): number | null {
    return this.peakBytes === null ? null : this.peakBytes / (1024 * 1024);
  }

  start(): void {
    if (this.endpoints.length === 0) return;
    this.inFlight = this.sample();
    this.timer = setInterval(() => {
      // One scrape at a time: a slow process must not pile up requests.
      this.inFlight = this.inFlight.then(() => this.sample());
    }, this.intervalMs);
  }

  async stop(): Promise<number | null> {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.inFlight;
    if (this.endpoints.length > 0) await this.sample();
    return this.peakMb;
  }

  private async sample(): Promise<void> {
    await Promise.all(
      this.endpoints.map(async (endpoint) => {
        try {
          const res = await fetch(`http://${endpoint}/metrics`, { signal: AbortSignal.timeout(2_000) });
          const bytes = parseRssBytes(await res.text());
          if (bytes !== null) {
            this.samples++;
            this.peakBytes = Math.max(this.peakBytes ?? 0, bytes);
          }
        } catch {
          // A missed sample only lowers the sample count; the report says how many were taken.
        }
      }),
    );
  }
}
