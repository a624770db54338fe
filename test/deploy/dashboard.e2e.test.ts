// The dashboard against the real services: the whole system on loopback (nats-server, the
// promoter with the local driver and its inference processes, the gateway — the promoter's
// end-to-end harness), a rollout rolled back and one promoted under load. Every metric the
// dashboard reads is exported by a running process, a real Prometheus scrapes them all and
// every panel's query returns data, the alert rules evaluate cleanly; then the panels are drawn
// from that data (docs/dashboard.png when UPDATE_DASHBOARD_PNG=1 — no Grafana can run here).
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { startPrometheus, type PrometheusServer, type ScrapeJob } from '../helpers/prometheus.js';
import { REPO_ROOT, tempDir, waitFor, type Spawned, type TempDir } from '../helpers/process.js';
import { postImage, TINY_IMAGES } from '../gateway/stack.js';
import { E2eStack, MODEL, type CanaryOptions, type Load } from '../promoter/e2e/harness.js';
import { annotationQueries, loadDashboard, panelQueries, variableMetrics } from './dashboard-spec.js';
import { renderDashboardSvg, toSeries, type Annotation, type PanelData } from './dashboard-render.js';
import { expandGrafanaVariables, metricNames } from './promql.js';
import type { Json } from './render.js';
import { parseStartupLine, type StartupLine, type StartupService } from '@segserve/proto';

const RATE = '10s'; // $__rate_interval for a 1 s scrape interval
const dashboard = loadDashboard();
const queries = panelQueries(dashboard);

let stack: E2eStack;
let gatewayBase = '';
let promoterMetrics = '';
let prometheus: PrometheusServer;
let grpcLoad: Load | undefined;
let sdSync: NodeJS.Timeout | undefined;
let scratch: TempDir;
let loadStarted = 0;
let loadStopped = 0;
let load: Promise<{ sent: number; failed: number }> | undefined;
let stopLoad = false;

/** `# TYPE name kind` families of a /metrics text. */
async function exported(url: string): Promise<Set<string>> {
  const text = await (await fetch(url)).text();
  return new Set([...text.matchAll(/^# TYPE (\S+) \S+$/gm)].map((m) => m[1]!));
}

/** Bounded load through the gateway: two concurrent clients, some bad uploads. */
async function drive(base: string, deadline: number, maxRequests: number): Promise<{ sent: number; failed: number }> {
  const images = ['facade-00.png', 'facade-01.jpg', 'facade-02.png'].map((f) => readFileSync(path.join(TINY_IMAGES, f)));
  const jpeg = images[1]!;
  const truncated = jpeg.subarray(0, Math.floor(jpeg.length / 2));
  let sent = 0;
  let failed = 0;
  const client = async (id: number): Promise<void> => {
    while (!stopLoad && Date.now() < deadline && sent < maxRequests) {
      const n = sent++;
      // One in twenty is not an image at all (the gateway answers 415), one in twenty a
      // truncated JPEG (the inference pod answers INVALID_INPUT): client errors on both panels.
      const body = n % 20 === 9 ? 'not an image' : n % 20 === 19 ? truncated : images[(n + id) % images.length]!;
      const res = await postImage(base, MODEL, body).catch(() => undefined);
      if (!res?.ok) failed++;
      await res?.arrayBuffer();
      // Two cores are shared with other test runs: leave them some air.
      await new Promise((r) => setTimeout(r, 10));
    }
  };
  await Promise.all([0, 1].map(client));
  return { sent, failed };
}

async function rangeQuery(expr: string, start: number, end: number): Promise<{ metric: Record<string, string>; values: [number, string][] }[]> {
  const params = new URLSearchParams({ query: expr, start: String(start), end: String(end), step: '1' });
  const res = await fetch(`${prometheus.url}/api/v1/query_range?${params}`);
  const body = (await res.json()) as { status: string; error?: string; data?: { result: { metric: Record<string, string>; values: [number, string][] }[] } };
  if (body.status !== 'success' || !body.data) throw new Error(`query_range failed: ${body.error ?? res.status} (${expr})`);
  return body.data.result;
}

// The harness's short test policy (canary 10 → 25 → 50 %, 3 s steps, 3 requests a step are
// enough: the machine is shared and a 10 % canary sees few); v1 is first published
// with 300 ms of injected latency (rolled back), then as it is (promoted).
const CANARY: CanaryOptions = { interval: '3s', bake: '5s', minRequests: 3 };

function startup<S extends StartupService>(proc: Spawned, service: S): StartupLine<S> {
  const line = proc.lines().find((l) => parseStartupLine(service, l));
  if (!line) throw new Error(`${proc.name}: no start-up line`);
  return parseStartupLine(service, line)!;
}

/** The scrape jobs, named as the PodMonitors/ServiceMonitor name them (deploy/k8s/base/monitoring.yaml). */
async function scrapeJobs(): Promise<ScrapeJob[]> {
  const groups = await fetch(`http://${promoterMetrics}/sd/inference`).then((r) => r.json() as Promise<{ targets: string[] }[]>, () => []);
  return [
    { job: 'segserve-promoter', targets: [promoterMetrics] },
    { job: 'segserve-gateway', targets: [gatewayBase.replace('http://', '')] },
    { job: 'segserve-inference', targets: groups.flatMap((g) => g.targets).sort() },
  ];
}

beforeAll(async () => {
  scratch = await tempDir('segserve-dashboard-');
  stack = await E2eStack.start({ canary: CANARY, versionEnv: { '1': { SEGSERVE_FAULT_DELAY_MS: '300' } } });
  gatewayBase = `http://127.0.0.1:${startup(stack.gateway, 'gateway').http_port}`;
  promoterMetrics = `127.0.0.1:${startup(stack.promoter, 'promoter').metrics_port}`;
  prometheus = await startPrometheus({ scrapeIntervalSeconds: 1, ruleFiles: [path.join(REPO_ROOT, 'deploy', 'prometheus', 'rules.yml')], targets: await scrapeJobs() });
  // Inference processes come and go with the rollouts: follow the promoter's discovery.
  let last = '';
  sdSync = setInterval(() => {
    void scrapeJobs().then(async (jobs) => {
      const key = JSON.stringify(jobs);
      if (key !== last) {
        last = key;
        await prometheus.setTargets(jobs).catch(() => (last = ''));
      }
    });
  }, 1000);
  loadStarted = Date.now() / 1000;
  load = drive(gatewayBase, Date.now() + 240_000, 20_000);
  grpcLoad = stack.startLoad(1, 50);
}, 300_000);

afterAll(async () => {
  stopLoad = true;
  if (sdSync) clearInterval(sdSync);
  await load?.catch(() => undefined);
  await grpcLoad?.stop();
  await prometheus?.[Symbol.asyncDispose]();
  await stack?.[Symbol.asyncDispose]();
  await scratch?.[Symbol.asyncDispose]();
}, 120_000);

describe('dashboard against live services', () => {
  it('a slow candidate is rolled back, then a good one promoted, under load', async () => {
    await waitFor(async () => ((await fetch(`${gatewayBase}/readyz`)).ok ? true : undefined), { timeoutMs: 60_000, what: 'gateway ready' });
    const decided = async (id: string): Promise<string> => {
      const s = await stack
        .waitState((x) => x.experiment_id === id && (x.phase === 'Succeeded' || x.phase === 'Failed'), `a decision on ${id}`, 300_000)
        .catch(async (err: unknown) => {
          throw new Error(`${String(err)}; state ${JSON.stringify(await stack.state())}; phases ${stack.phases(id).join(' ')}\n${stack.promoter.output().split('\n').slice(-20).join('\n')}`);
        });
      console.log(`${id}: ${s.phase} ${String(s['outcome'] ?? '')}: ${String(s['reason'] ?? '')}`);
      return `${s.phase} ${String(s['outcome'] ?? '')}`;
    };
    const bad = await stack.publish('1', 'dashboard-slow');
    expect(await decided(bad)).toBe('Failed rolled_back');
    expect(stack.phases(bad)).toContain('Canary@10');
    // The next rollout replaces the Failed phase: let Prometheus scrape it first, or the
    // Rollback annotation checked below can miss a state that lasted less than a scrape.
    const rollback = annotationQueries(dashboard).find((a) => a.name === 'Rollback')!;
    await prometheus.waitForSeries(expandGrafanaVariables(rollback.expr, { model: MODEL }), 30_000);
    await stack.restartPromoter({ canary: CANARY, versionEnv: {} });
    // The promoter's own e2e tests own its correctness; here a second attempt is allowed when a
    // busy machine makes the first one fail (its reason is logged), so that the dashboard still
    // gets its promotion.
    let verdict = await decided(await stack.publish('1', 'dashboard-good'));
    if (verdict !== 'Succeeded promoted') verdict = await decided(await stack.publish('1', 'dashboard-good-2'));
    expect(verdict).toBe('Succeeded promoted');
  }, 600_000);

  it('every metric the dashboard and the alert rules read is exported by a running service', async () => {
    const families = new Set<string>();
    const sd = (await scrapeJobs()).find((j) => j.job === 'segserve-inference')!.targets;
    expect(sd.length).toBeGreaterThan(0);
    for (const url of [...sd.map((t) => `http://${t}/metrics`), `${gatewayBase}/metrics`, `http://${promoterMetrics}/metrics`]) {
      for (const f of await exported(url)) families.add(f);
    }
    const used = new Set([...queries.map((q) => q.expr), ...annotationQueries(dashboard).map((a) => a.expr)].flatMap((e) => metricNames(expandGrafanaVariables(e))));
    for (const m of variableMetrics(dashboard)) used.add(m);
    const rules = parse(readFileSync(path.join(REPO_ROOT, 'deploy', 'prometheus', 'rules.yml'), 'utf8')) as { groups: { rules: { expr: string }[] }[] };
    for (const r of rules.groups.flatMap((g) => g.rules)) for (const m of metricNames(r.expr)) if (m.startsWith('segserve_') || m.startsWith('process_')) used.add(m);
    const missing = [...used].filter((m) => !families.has(m));
    expect(missing, `read by the dashboard or the rules but exported by no running service`).toEqual([]);
    expect(families.size).toBeGreaterThan(20);
  });

  it('under load, every panel query returns data from a real Prometheus', async () => {
    const live = queries;
    // Wait until every series exists and has been scraped while traffic flows.
    await prometheus.waitForSeries('sum(rate(segserve_inference_requests_total{code!="OK"}[10s])) > 0', 90_000);
    await prometheus.waitForSeries('sum(rate(segserve_gateway_requests_total{code="OK"}[10s])) > 0', 90_000);
    const empty: string[] = [];
    for (const q of live) {
      const expr = expandGrafanaVariables(q.expr, { model: MODEL, rateInterval: RATE });
      const ok = await waitFor(async () => (await prometheus.query(expr)).some((s) => Number.isFinite(s.value)) || undefined, { timeoutMs: 30_000, intervalMs: 1000, what: expr }).catch(() => false);
      if (!ok) empty.push(`${q.panel}: ${expr}`);
    }
    expect(empty, 'panels without data').toEqual([]);
    // The two rollouts left their annotations over the test's time range: one rollback, one
    // promotion (Grafana runs annotation queries as range queries too).
    for (const a of annotationQueries(dashboard)) {
      const series = await rangeQuery(expandGrafanaVariables(a.expr, { model: MODEL }), Math.floor(loadStarted), Math.ceil(Date.now() / 1000));
      expect(series.length, a.name).toBeGreaterThan(0);
    }
  });

  it('the alert rules load into the real Prometheus and evaluate on the live series without errors', async () => {
    type Rule = { name: string; health: string; lastError?: string; state?: string };
    const rules = await waitFor(
      async () => {
        const body = (await (await fetch(`${prometheus.url}/api/v1/rules`)).json()) as { data: { groups: { rules: Rule[] }[] } };
        const all = body.data.groups.flatMap((g) => g.rules);
        return all.length > 0 && all.every((r) => r.health !== 'unknown') ? all : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 1000, what: 'rules evaluated' },
    );
    expect(rules.map((r) => `${r.name}: ${r.health} ${r.lastError ?? ''}`.trim())).toEqual(rules.map((r) => `${r.name}: ok`));
    // Memory is far below the host-sized limit.
    expect(rules.find((r) => r.name === 'SegserveInferenceMemoryHigh')?.state).toBe('inactive');
  });

  it('draws the panels from the recorded data (docs/dashboard.png)', async () => {
    // Let the load run a while longer so that the picture shows some history.
    await new Promise((r) => setTimeout(r, 10_000));
    stopLoad = true;
    const result = await load!;
    await grpcLoad?.stop();
    loadStopped = Date.now() / 1000;
    expect(result.sent).toBeGreaterThan(50);
    await new Promise((r) => setTimeout(r, 3_000));
    const t0 = Math.floor(loadStarted) + 3;
    const t1 = Math.ceil(loadStopped) + 3;
    const panels: PanelData[] = [];
    for (const p of dashboard.panels as Json[]) {
      if (p.type === 'row') continue;
      const series = [];
      for (const t of p.targets as Json[]) series.push(...toSeries(await rangeQuery(expandGrafanaVariables(t.expr, { model: MODEL, rateInterval: RATE }), t0, t1), t.legendFormat ?? ''));
      panels.push({ panel: p, series });
    }
    const annotations: Annotation[] = [];
    for (const [i, a] of annotationQueries(dashboard).entries()) {
      for (const r of await rangeQuery(expandGrafanaVariables(a.expr, { model: MODEL }), t0, t1)) {
        const first = r.values[0];
        if (first) annotations.push({ time: first[0], text: `${a.name} ${r.metric['model'] ?? ''}`, color: i === 0 ? '#73bf69' : '#f2495c' });
      }
    }
    expect(panels.filter((p) => p.series.length > 0).length).toBeGreaterThan(10);
    const svg = renderDashboardSvg(dashboard, panels, annotations, t0, t1);
    const png = await sharp(Buffer.from(svg)).png({ compressionLevel: 9 }).toBuffer();
    const meta = await sharp(png).metadata();
    expect(meta.width).toBeGreaterThan(1000);
    expect(png.length).toBeGreaterThan(20_000);
    await writeFile(path.join(scratch.path, 'dashboard.png'), png);
    if (process.env['UPDATE_DASHBOARD_PNG'] === '1') await writeFile(path.join(REPO_ROOT, 'docs', 'dashboard.png'), png);
  });
});
