// Both MetricsSource adapters against real inference processes (tiny ONNX models), one of them
// failing 30 % of its requests (SEGSERVE_FAULT_ERROR_RATIO): the embedded scraper and
// Prometheus, with traffic sent by the golden replayer.
import { mkdir, symlink } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PrometheusMetrics } from '../../../services/promoter/src/adapters/prometheus-metrics.js';
import { ScrapeMetrics, type ScrapeEndpoint } from '../../../services/promoter/src/adapters/scrape-metrics.js';
import { GrpcGoldenReplayer } from '../../../services/promoter/src/rollout/golden-replay.js';
import { startPrometheus, type PrometheusServer } from '../../helpers/prometheus.js';
import { REPO_ROOT, spawnSegserve, tempDir, waitFor, type Spawned, type TempDir } from '../../helpers/process.js';

interface Served {
  readonly proc: Spawned;
  readonly grpc: string;
  readonly metrics: string;
}

let v1: Served;
let v2: Served;
let golden: TempDir;
let prom: PrometheusServer;
let replayer: GrpcGoldenReplayer;

async function inference(version: string, env: Record<string, string> = {}): Promise<Served> {
  const proc = spawnSegserve(['inference', '--model', path.join(REPO_ROOT, 'test/fixtures/models/tiny-seg', version)], {
    env: { SEGSERVE_GRPC_PORT: '0', SEGSERVE_METRICS_PORT: '0', SEGSERVE_MAX_CONCURRENCY: '1', ...env },
    name: `inference v${version}`,
  });
  const line = await proc.waitForStartup('inference', 90_000);
  return { proc, grpc: `ipv4:127.0.0.1:${line.grpc_port}`, metrics: `127.0.0.1:${line.metrics_port}` };
}

/** A golden root laid out as `<model>/golden/{images,masks}` over the tiny fixture set. */
async function goldenRoot(): Promise<TempDir> {
  const dir = await tempDir('segserve-golden-');
  await mkdir(path.join(dir.path, 'tiny-seg'));
  await symlink(path.join(REPO_ROOT, 'test/fixtures/golden-tiny'), path.join(dir.path, 'tiny-seg', 'golden'));
  return dir;
}

beforeAll(async () => {
  [v1, v2, golden] = await Promise.all([inference('1'), inference('2', { SEGSERVE_FAULT_ERROR_RATIO: '0.3' }), goldenRoot()]);
  replayer = new GrpcGoldenReplayer({ goldenRoot: golden.path });
  prom = await startPrometheus({ targets: [{ job: 'inference', targets: [v1.metrics, v2.metrics] }], scrapeIntervalSeconds: 1 });
});

afterAll(async () => {
  await Promise.all([v1?.proc.stop(), v2?.proc.stop(), prom?.[Symbol.asyncDispose]()]);
  await golden?.[Symbol.asyncDispose]();
});

const endpoints = (): ScrapeEndpoint[] => [
  { target: v1.metrics, model: 'tiny-seg', track: 'stable' },
  { target: v2.metrics, model: 'tiny-seg', track: 'canary' },
];

describe('metrics sources', () => {
  it('the golden replayer sends the requested number of Segment calls, counting failures', async () => {
    const signal = new AbortController().signal;
    const ok = await replayer.replay('tiny-seg', v1.grpc, 20, signal);
    expect(ok).toEqual({ sent: 20, failed: 0 });
    // Paced: spread over the time given, one at a time.
    const started = Date.now();
    expect(await replayer.replay('tiny-seg', v1.grpc, 5, signal, { spreadMs: 1_000 })).toEqual({ sent: 5, failed: 0 });
    expect(Date.now() - started).toBeGreaterThanOrEqual(800);
    const faulty = await replayer.replay('tiny-seg', v2.grpc, 40, signal);
    expect(faulty.sent).toBe(40);
    expect(faulty.failed).toBeGreaterThan(0);
    expect(faulty.failed).toBeLessThan(40);
  });

  it('scraping: a window diffs counters and histograms per track and version', async () => {
    const scrape = new ScrapeMetrics({ endpoints });
    // Both processes started inside a 10-minute window: everything so far counts.
    const stable = await scrape.trackMetrics('tiny-seg', '1', 'stable', 600);
    const canary = await scrape.trackMetrics('tiny-seg', '2', 'canary', 600);
    expect(stable).toMatchObject({ requests: 25, errors: 0 });
    expect(canary.requests).toBe(40);
    expect(canary.errors).toBeGreaterThan(0);
    expect(stable.latencyP95Seconds).toBeGreaterThan(0);
    // The histogram behind the p95 (the latency ratio's uncertainty comes from it): every request in +Inf.
    expect(stable.latencyBuckets?.get(Infinity)).toBe(25);
    expect(stable.rssBytes).toBeGreaterThan(10 * 2 ** 20);
    expect(stable.memoryLimitBytes).toBeGreaterThan(stable.rssBytes ?? 0);
    // The wrong version on a track has no figures.
    expect(await scrape.trackMetrics('tiny-seg', '2', 'stable', 600)).toMatchObject({ requests: 0, latencyP95Seconds: null, latencyBuckets: null, rssBytes: null });

    // A 1 s window after a snapshot: only what happened since.
    await scrape.trackMetrics('tiny-seg', '1', 'stable', 1);
    await new Promise((r) => setTimeout(r, 1_100));
    await replayer.replay('tiny-seg', v1.grpc, 7, new AbortController().signal);
    expect(await scrape.trackMetrics('tiny-seg', '1', 'stable', 1)).toMatchObject({ requests: 7, errors: 0 });
  });

  it('scraping: a /metrics that does not answer in time — the newest background sample stands in; with none recent, an error (a hold), never a window of 0 requests', async () => {
    let answered = 0;
    const started = Date.now() / 1000 - 10;
    const server = createServer((_req, res) => {
      if (answered++ > 0) return; // busy: never answers again
      res.end(`segserve_inference_requests_total{model="tiny-seg",version="1",code="OK"} 12\nprocess_start_time_seconds ${started}\n`);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      let now = Date.now();
      const target = `127.0.0.1:${(server.address() as AddressInfo).port}`;
      const scrape = new ScrapeMetrics({ endpoints: () => [{ target, model: 'tiny-seg', track: 'stable' }], timeoutMs: 300, sampleIntervalMs: 5_000, clock: () => now });
      expect(await scrape.trackMetrics('tiny-seg', '1', 'stable', 600)).toMatchObject({ requests: 12 });
      expect(await scrape.trackMetrics('tiny-seg', '1', 'stable', 600)).toMatchObject({ requests: 12 });
      now += 11_000;
      await expect(scrape.trackMetrics('tiny-seg', '1', 'stable', 600)).rejects.toThrow(/did not answer within 0.3 s/);
    } finally {
      server.closeAllConnections();
      server.close();
    }
  });

  it('Prometheus: the same figures through PromQL', async () => {
    const source = new PrometheusMetrics({ url: prom.url, minWindowSeconds: 5 });
    expect(await source.isOnline()).toBe(true);
    // Counters appear with their first request: let Prometheus see the series, then add traffic.
    await prom.waitForSeries('segserve_inference_requests_total{version="2",code="INTERNAL"}');
    await prom.waitForSeries('segserve_inference_requests_total{version="1",code="OK"}');
    await Promise.all([replayer.replay('tiny-seg', v1.grpc, 40, new AbortController().signal), replayer.replay('tiny-seg', v2.grpc, 40, new AbortController().signal)]);
    const [stable, canary] = await waitFor(
      async () => {
        const s = await source.trackMetrics('tiny-seg', '1', 'stable', 120);
        const c = await source.trackMetrics('tiny-seg', '2', 'canary', 120);
        return s.requests >= 40 && c.requests >= 40 ? ([s, c] as const) : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 500, what: 'prometheus to see the traffic' },
    );
    expect(stable.errors).toBe(0);
    expect(canary.errors).toBeGreaterThan(0);
    expect(stable.latencyP95Seconds).toBeGreaterThan(0);
    // increase() extrapolates: about the requests of the window, in the +Inf bucket.
    expect(stable.latencyBuckets?.get(Infinity)).toBeGreaterThanOrEqual(40);
    expect(stable.rssBytes).toBeGreaterThan(10 * 2 ** 20);
    expect(stable.memoryLimitBytes).toBeGreaterThan(stable.rssBytes ?? 0);
    expect(await source.trackMetrics('tiny-seg', '9', 'canary', 120)).toEqual({ requests: 0, errors: 0, latencyP95Seconds: null, latencyBuckets: null, rssBytes: null, memoryLimitBytes: null });
  });

  it('Prometheus unreachable: an error the controller turns into a hold', async () => {
    const source = new PrometheusMetrics({ url: 'http://127.0.0.1:1', timeoutMs: 1_000 });
    expect(await source.isOnline()).toBe(false);
    await expect(source.trackMetrics('tiny-seg', '1', 'stable', 30)).rejects.toThrow();
  });

  it('the golden replayer replays the golden set it is told (the policy\'s newest accepted one; last: its requests would count in the windows above)', async () => {
    const signal = new AbortController().signal;
    const missing = new GrpcGoldenReplayer({ goldenRoot: golden.path, goldenSet: () => 'golden-2' });
    await expect(missing.replay('tiny-seg', v1.grpc, 2, signal)).rejects.toThrow(/tiny-seg\/golden-2\/images/);
    await symlink(path.join(REPO_ROOT, 'test/fixtures/golden-tiny'), path.join(golden.path, 'tiny-seg', 'golden-2'));
    const newer = new GrpcGoldenReplayer({ goldenRoot: golden.path, goldenSet: (model) => (model === 'tiny-seg' ? 'golden-2' : 'golden') });
    expect(await newer.replay('tiny-seg', v1.grpc, 3, signal)).toEqual({ sent: 3, failed: 0 });
  });
  it('the golden replayer as pairs: each image through both tracks, the latencies of every pair both answered (after the windows above: its requests would count there)', async () => {
    const got: [number, number][] = [];
    const r = await replayer.replayPaired('tiny-seg', { canary: v2.grpc, stable: v1.grpc }, 30, new AbortController().signal, { onPair: (canaryMs, stableMs) => got.push([canaryMs, stableMs]) });
    expect(r.sent).toBe(60);
    // Only the canary (v2) fails, one request of a pair at most: each failure costs one pair.
    expect(r.failed).toBeGreaterThan(0);
    expect(got).toHaveLength(30 - r.failed);
    expect(got.every(([c, s]) => c > 0 && s > 0)).toBe(true);
  });
});
