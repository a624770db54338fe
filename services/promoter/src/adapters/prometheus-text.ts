// The Prometheus text exposition format, just enough to read the inference processes' /metrics
// (samples with labels; comments and timestamps ignored). The quantile of a histogram, computed
// the way PromQL's histogram_quantile does, is the domain's (domain/ratio.ts), re-exported here.

export { histogramQuantile, type Buckets } from '../domain/ratio.js';

export interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

/** gRPC/segserve codes that are the server's fault: they count against a canary. */
export const SERVER_ERROR_CODES: readonly string[] = ['INTERNAL', 'UNAVAILABLE', 'DEADLINE', 'OVERLOADED', 'UNKNOWN', 'DEADLINE_EXCEEDED', 'RESOURCE_EXHAUSTED', 'DATA_LOSS', 'UNIMPLEMENTED'];

function parseLabels(text: string): Record<string, string> {
  const labels: Record<string, string> = {};
  const re = /\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"\s*,?/gy;
  let m: RegExpExecArray | null;
  while ((m = re.exec(text)) !== null) {
    labels[m[1] as string] = (m[2] as string).replace(/\\(.)/g, (_s, c: string) => (c === 'n' ? '\n' : c));
    if (re.lastIndex >= text.length) break;
  }
  return labels;
}

function parseValue(text: string): number {
  if (text === '+Inf') return Infinity;
  if (text === '-Inf') return -Infinity;
  return Number(text);
}

export function parsePrometheusText(text: string): Sample[] {
  const out: Sample[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const brace = line.indexOf('{');
    const space = line.indexOf(' ');
    let name: string;
    let labels: Record<string, string> = {};
    let rest: string;
    if (brace >= 0 && (space < 0 || brace < space)) {
      const close = line.lastIndexOf('}');
      if (close < brace) continue;
      name = line.slice(0, brace);
      labels = parseLabels(line.slice(brace + 1, close));
      rest = line.slice(close + 1).trim();
    } else {
      if (space < 0) continue;
      name = line.slice(0, space);
      rest = line.slice(space + 1).trim();
    }
    const value = parseValue(rest.split(/\s+/)[0] ?? '');
    if (!Number.isNaN(value)) out.push({ name, labels, value });
  }
  return out;
}

export function matches(s: Sample, name: string, labels: Readonly<Record<string, string>>): boolean {
  return s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v);
}

/** Sums the `<name>_bucket` series matching `labels` by `le`. */
export function bucketsOf(samples: readonly Sample[], name: string, labels: Readonly<Record<string, string>>): Map<number, number> {
  const out = new Map<number, number>();
  for (const s of samples) {
    if (!matches(s, `${name}_bucket`, labels) || s.labels['le'] === undefined) continue;
    const le = parseValue(s.labels['le']);
    out.set(le, (out.get(le) ?? 0) + s.value);
  }
  return out;
}
