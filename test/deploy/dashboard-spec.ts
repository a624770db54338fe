// Reads the queries out of deploy/grafana/segserve.json: panels, annotations, variables.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { REPO_ROOT } from '../helpers/process.js';
import type { Json } from './render.js';

export const DASHBOARD_FILE = path.join(REPO_ROOT, 'deploy', 'grafana', 'segserve.json');

export interface PanelQuery {
  readonly panel: string;
  readonly type: string;
  readonly expr: string;
  readonly legend: string;
}

export function loadDashboard(): Json {
  return JSON.parse(readFileSync(DASHBOARD_FILE, 'utf8'));
}

export function panelQueries(dashboard: Json = loadDashboard()): PanelQuery[] {
  const panels: Json[] = (dashboard.panels as Json[]).flatMap((p) => [p, ...((p.panels as Json[] | undefined) ?? [])]);
  return panels.filter((p) => p.type !== 'row').flatMap((p) => (p.targets as Json[]).map((t) => ({ panel: p.title as string, type: p.type as string, expr: t.expr as string, legend: (t.legendFormat as string) ?? '' })));
}

export function annotationQueries(dashboard: Json = loadDashboard()): { name: string; expr: string }[] {
  return (dashboard.annotations.list as Json[]).filter((a) => a.expr).map((a) => ({ name: a.name as string, expr: a.expr as string }));
}

/** `label_values(metric, label)` of the template variables → the metric. */
export function variableMetrics(dashboard: Json = loadDashboard()): string[] {
  return (dashboard.templating.list as Json[]).flatMap((v) => {
    const q = typeof v.query === 'string' ? v.query : v.query?.query;
    const m = typeof q === 'string' ? /label_values\((\w+)/.exec(q) : null;
    return m?.[1] ? [m[1]] : [];
  });
}
