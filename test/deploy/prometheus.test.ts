// Alert rules and dashboard queries, checked offline: promtool parses and unit-tests every
// rule, the PrometheusRule object carries exactly the rules file, and every dashboard query
// parses as PromQL and reads only metrics of the contract (docs/architecture.md#metrics).
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { REPO_ROOT } from '../helpers/process.js';
import { annotationQueries, loadDashboard, panelQueries, variableMetrics } from './dashboard-spec.js';
import { checkPromql, expandGrafanaVariables, metricNames, runPromtool } from './promql.js';
import type { Json } from './render.js';

const DIR = path.join(REPO_ROOT, 'deploy', 'prometheus');
const rules = parse(readFileSync(path.join(DIR, 'rules.yml'), 'utf8')) as { groups: { name: string; rules: Json[] }[] };
const alerts = rules.groups.flatMap((g) => g.rules).filter((r) => r.alert);

/** docs/architecture.md#metrics (the contract) plus prom-client's defaults that dashboards use. */
export const CONTRACT_METRICS = [
  'segserve_inference_requests_total',
  'segserve_inference_duration_seconds',
  'segserve_inference_queue_depth',
  'segserve_inference_in_flight',
  'segserve_model_info',
  'segserve_model_load_seconds',
  'segserve_memory_limit_bytes',
  'process_resident_memory_bytes',
  'nodejs_external_memory_bytes',
  'segserve_gateway_requests_total',
  'segserve_gateway_request_duration_seconds',
  'segserve_gateway_upstream_retries_total',
  'segserve_gateway_route_weight',
  'segserve_promoter_results_total',
  'segserve_rollout_phase',
  'segserve_rollout_canary_weight',
  'segserve_promoter_checks_total',
];

describe('alert rules', () => {
  it('promtool check rules accepts rules.yml', async () => {
    const out = await runPromtool(['check', 'rules', 'rules.yml'], DIR);
    expect(out).toMatch(new RegExp(`SUCCESS: ${rules.groups.flatMap((g) => g.rules).length} rules found`));
  });

  it('promtool test rules passes, and every alert has a firing and a quiet case', async () => {
    expect(await runPromtool(['test', 'rules', 'rules.test.yml'], DIR)).toMatch(/SUCCESS/);
    const tests = (parse(readFileSync(path.join(DIR, 'rules.test.yml'), 'utf8')) as { tests: Json[] }).tests.flatMap((t) => t.alert_rule_test as Json[]);
    for (const a of alerts) {
      const cases = tests.filter((t) => t.alertname === a.alert);
      expect(cases.some((t) => (t.exp_alerts as Json[]).length > 0), `${a.alert} fires in some test`).toBe(true);
      expect(cases.some((t) => (t.exp_alerts as Json[]).length === 0), `${a.alert} stays quiet in some test`).toBe(true);
    }
  });

  it('covers the required alerts, each with a severity, summary and runbook', () => {
    const names = alerts.map((a) => a.alert as string);
    for (const required of [
      'SegserveInferenceLatencyHigh', // p95 > 500 ms
      'SegserveInferenceErrorRatioHigh', // > 1 %
      'SegserveInferenceMemoryHigh', // RSS > 90 % of the limit
      'SegserveNoReadyInference',
      'SegserveInferenceQueueSaturated',
      'SegserveRolloutFailed',
      'SegservePromoterNotConsuming',
    ]) {
      expect(names).toContain(required);
    }
    for (const a of alerts) {
      expect(['warning', 'critical']).toContain(a.labels?.severity);
      expect(a.annotations?.summary, a.alert).toBeTruthy();
      expect(a.annotations?.runbook_url, a.alert).toMatch(/^docs\/deploy\.md#/);
    }
    expect(readFileSync(path.join(REPO_ROOT, 'docs', 'deploy.md'), 'utf8')).toMatch(/^## Alerts$/m);
  });

  it('the PrometheusRule object carries exactly the groups of rules.yml (node deploy/prometheus/sync.mjs)', () => {
    const object = parse(readFileSync(path.join(DIR, 'prometheusrule.yaml'), 'utf8')) as Json;
    expect(object.kind).toBe('PrometheusRule');
    expect(object.spec.groups, 'prometheusrule.yaml is stale: run node deploy/prometheus/sync.mjs').toEqual(rules.groups);
  });

  it('alert expressions read only contract metrics (plus up, kube-state-metrics and the NATS exporter)', () => {
    for (const a of alerts) {
      for (const name of metricNames(a.expr)) {
        expect([...CONTRACT_METRICS, 'up', 'kube_deployment_status_replicas_ready', 'jetstream_consumer_num_pending'], `${a.alert}: ${name}`).toContain(name);
      }
    }
  });
});

describe('Grafana dashboard', () => {
  const dashboard = loadDashboard();
  const queries = panelQueries(dashboard);

  it('has the panels the runbook relies on', () => {
    const titles = queries.map((q) => q.panel).join('\n');
    for (const t of [/request rate by version and code/i, /error ratio/i, /p50/, /p95/, /p99/, /RSS per pod against the 512 MiB limit/, /Queue depth and in-flight/, /Canary weight/, /Rollout phase/]) {
      expect(titles).toMatch(t);
    }
    expect(annotationQueries(dashboard).map((a) => a.name)).toEqual(['Promotion', 'Rollback']);
    expect(dashboard.uid).toBe('segserve');
  });

  it('is a loadable Grafana dashboard: unique panel ids, a datasource variable, no overlapping panels', () => {
    const panels = dashboard.panels as Json[];
    expect(new Set(panels.map((p) => p.id)).size).toBe(panels.length);
    expect((dashboard.templating.list as Json[]).map((v) => v.name)).toEqual(['datasource', 'model']);
    const cells = new Set<string>();
    for (const p of panels) {
      const { x, y, w, h } = p.gridPos as { x: number; y: number; w: number; h: number };
      expect(x + w, p.title).toBeLessThanOrEqual(24);
      for (let i = x; i < x + w; i++) {
        for (let j = y; j < y + h; j++) {
          expect(cells.has(`${i},${j}`), `${p.title} overlaps at ${i},${j}`).toBe(false);
          cells.add(`${i},${j}`);
        }
      }
      if (p.type !== 'row') for (const t of p.targets as Json[]) expect(t.datasource.uid).toBe('${datasource}');
    }
  });

  it('every query parses as PromQL (promtool)', async () => {
    const exprs = [...queries.map((q) => q.expr), ...annotationQueries(dashboard).map((a) => a.expr)].map((e) => expandGrafanaVariables(e));
    await checkPromql(exprs);
    // The check itself can fail.
    await expect(checkPromql(['sum(rate(x[5m])'])).rejects.toThrow(/promtool check rules/);
  });

  it('every metric a query reads is in the metrics contract (docs/architecture.md#metrics)', () => {
    const used = new Set([...queries, ...annotationQueries(dashboard)].flatMap((q) => metricNames(expandGrafanaVariables(q.expr))));
    for (const m of variableMetrics(dashboard)) used.add(m);
    expect(used.size).toBeGreaterThan(8);
    for (const m of used) expect(CONTRACT_METRICS, m).toContain(m);
    expect(metricNames('histogram_quantile(0.95, sum by (le, stage) (rate(segserve_inference_duration_seconds_bucket{stage="total"}[5m]))) / on (pod) group_left up')).toEqual(['segserve_inference_duration_seconds', 'up']);
  });
});
