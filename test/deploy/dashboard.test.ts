// The dashboard against the real services: every metric it reads is exported by a running
// process, a real Prometheus scrapes those processes under a little load and every panel's
// query returns data; then the panels are drawn from that data (docs/dashboard.png when
// UPDATE_DASHBOARD_PNG=1 — no Grafana can run here, docs/deploy.md says so).
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { startPrometheus, type PrometheusServer } from '../helpers/prometheus.js';
import { REPO_ROOT, tempDir, waitFor, type TempDir } from '../helpers/process.js';
import { postImage, startGatewayProc, startInference, tinySeg, TINY_IMAGES, type GatewayProc, type InferenceProc } from '../gateway/stack.js';
import { annotationQueries, loadDashboard, panelQueries, variableMetrics } from './dashboard-spec.js';
import { renderDashboardSvg, toSeries, type Annotation, type PanelData } from './dashboard-render.js';
import { expandGrafanaVariables, metricNames } from './promql.js';
import type { Json } from './render.js';

const MODEL = 'tiny-seg';
const RATE = '10s'; // $__rate_interval for a 1 s scrape interval
const dashboard = loadDashboard();
const queries = panelQueries(dashboard);

let stable: InferenceProc[] = [];
let canary: InferenceProc;
let gateway: GatewayProc;
let prometheus: PrometheusServer;
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
  let sent = 0;
  let failed = 0;
  const client = async (id: number): Promise<void> => {
    while (!stopLoad && Date.now() < deadline && sent < maxRequests) {
      const n = sent++;
      // One in ten is not an image at all: the gateway answers 415 (a client error).
      const body = n % 10 === 9 ? 'not an image' : images[(n + id) % images.length]!;
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

beforeAll(async () => {
  scratch = await tempDir('segserve-dashboard-');
  stable = [await startInference(tinySeg('1')), await startInference(tinySeg('1'))];
  // The canary fails one request in twelve (test-only fault injection) so that the error panels
  // have something to show.
  canary = await startInference(tinySeg('2'), { SEGSERVE_FAULT_ERROR_RATIO: '0.08' });
  const target = (procs: InferenceProc[]): string => `ipv4:${procs.map((p) => p.address).join(',')}`;
  gateway = await startGatewayProc({ SEGSERVE_UPSTREAMS: `${MODEL}=${target(stable)};${MODEL}/canary=25@${target([canary])}` });
  // Job names as the PodMonitors/ServiceMonitor set them (deploy/k8s/base/monitoring.yaml).
  prometheus = await startPrometheus({
    scrapeIntervalSeconds: 1,
    ruleFiles: [path.join(REPO_ROOT, 'deploy', 'prometheus', 'rules.yml')],
    targets: [
      { job: 'segserve-inference', targets: [...stable, canary].map((p) => `127.0.0.1:${p.metricsPort}`) },
      { job: 'segserve-gateway', targets: [`127.0.0.1:${gateway.httpPort}`] },
    ],
  });
  loadStarted = Date.now() / 1000;
  load = drive(gateway.base, Date.now() + 90_000, 4000);
}, 300_000);

afterAll(async () => {
  stopLoad = true;
  await load?.catch(() => undefined);
  await prometheus?.[Symbol.asyncDispose]();
  await gateway?.[Symbol.asyncDispose]();
  for (const p of [...stable, canary]) await p?.[Symbol.asyncDispose]();
  await scratch?.[Symbol.asyncDispose]();
});

describe('dashboard against live services', () => {
  it('every metric the dashboard and the alert rules read is exported by a running service', async () => {
    const families = new Set<string>();
    for (const url of [`http://127.0.0.1:${stable[0]!.metricsPort}/metrics`, `http://127.0.0.1:${canary.metricsPort}/metrics`, `${gateway.base}/metrics`]) {
      for (const f of await exported(url)) families.add(f);
    }
    const used = new Set([...queries.map((q) => q.expr), ...annotationQueries(dashboard).map((a) => a.expr)].flatMap((e) => metricNames(expandGrafanaVariables(e))));
    for (const m of variableMetrics(dashboard)) used.add(m);
    const rules = parse(readFileSync(path.join(REPO_ROOT, 'deploy', 'prometheus', 'rules.yml'), 'utf8')) as { groups: { rules: { expr: string }[] }[] };
    for (const r of rules.groups.flatMap((g) => g.rules)) for (const m of metricNames(r.expr)) if (m.startsWith('segserve_') || m.startsWith('process_')) used.add(m);
    const missing = [...used].filter((m) => !families.has(m) && !PROMOTER_METRICS.includes(m));
    expect(missing, `read by the dashboard or the rules but exported by no running service`).toEqual([]);
    expect(families.size).toBeGreaterThan(20);
  });

  it('under load, every panel query of inference and gateway metrics returns data from a real Prometheus', async () => {
    const live = queries.filter((q) => !metricNames(q.expr).some((m) => PROMOTER_METRICS.includes(m)));
    expect(live.length).toBeGreaterThan(10);
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
    // Nothing here is wrong enough to fire within a minute ("for" clauses), and memory is far
    // below the host-sized limit.
    expect(rules.find((r) => r.name === 'SegserveInferenceMemoryHigh')?.state).toBe('inactive');
  });

  it('draws the panels from the recorded data (docs/dashboard.png)', async () => {
    // Let the load run a while longer so that the picture shows some history.
    await new Promise((r) => setTimeout(r, 15_000));
    stopLoad = true;
    const result = await load!;
    loadStopped = Date.now() / 1000;
    expect(result.sent).toBeGreaterThan(50);
    await new Promise((r) => setTimeout(r, 3_000));
    const t0 = Math.floor(loadStarted) + 5;
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

/** Exported by the promoter (DESIGN.md §8). */
const PROMOTER_METRICS = ['segserve_promoter_results_total', 'segserve_rollout_phase', 'segserve_rollout_canary_weight', 'segserve_promoter_checks_total'];
