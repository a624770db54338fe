// PromQL helpers for the dashboard and rule checks: Grafana variables → concrete values,
// syntax checking with promtool (the real Prometheus parser), and the metric names a query
// reads.
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { stringify } from 'yaml';
import { requireBinary, tempDir } from '../helpers/process.js';

const run = promisify(execFile);
export const PROMTOOL_INSTALL_HINT = 'apt-get install -y prometheus (Debian ships promtool in it; or: bash scripts/setup.sh)';

export function promtool(): string {
  return requireBinary('promtool', PROMTOOL_INSTALL_HINT);
}

/** Runs promtool; resolves with its output, rejects with it on a non-zero exit. */
export async function runPromtool(args: readonly string[], cwd?: string): Promise<string> {
  try {
    const { stdout, stderr } = await run(promtool(), [...args], { cwd, maxBuffer: 16 * 1024 * 1024 });
    return stdout + stderr;
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string };
    throw new Error(`promtool ${args.join(' ')} failed:\n${e.stdout ?? ''}${e.stderr ?? e.message}`);
  }
}

/** Grafana's variables, replaced by what they stand for at query time. */
export function expandGrafanaVariables(expr: string, values: { model?: string; rateInterval?: string } = {}): string {
  return expr
    .replaceAll('$__rate_interval', values.rateInterval ?? '1m')
    .replaceAll('$__interval', '30s')
    .replaceAll('$__range', '1h')
    .replaceAll('$model', values.model ?? '.*');
}

/** Parses every expression with promtool (as recording rules); throws naming the bad ones. */
export async function checkPromql(exprs: readonly string[]): Promise<void> {
  await using dir = await tempDir('segserve-promql-');
  const file = path.join(dir.path, 'queries.yml');
  const rules = exprs.map((expr, i) => ({ record: `segserve:query_${i}`, expr }));
  await writeFile(file, stringify({ groups: [{ name: 'queries', rules }] }));
  await runPromtool(['check', 'rules', file]);
}

const KEYWORDS = new Set(['by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'and', 'or', 'unless', 'offset', 'bool', 'inf', 'nan']);

/** Metric names a PromQL expression selects (histogram series reduced to their base name). */
export function metricNames(expr: string): string[] {
  const stripped = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\{[^}]*\}/g, '{}')
    .replace(/\[[^\]]*\]/g, '[]')
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ');
  const names = new Set<string>();
  for (const m of stripped.matchAll(/(?<![\w:.])[a-zA-Z_:][a-zA-Z0-9_:]*/g)) {
    const name = m[0];
    const next = stripped.slice(m.index + name.length).trimStart()[0];
    if (next === '(' || KEYWORDS.has(name.toLowerCase())) continue;
    names.add(name.replace(/_(bucket|sum|count)$/, ''));
  }
  return [...names].sort();
}
