// `segserve decisions <model>`: the decision records as a table a person can read — id,
// version, claimed → measured figures, decision and reason.
import type { DecisionRecord } from '@segserve/proto';
import { fmt } from '@segserve/promoter';
import { explainCode } from './status-format.js';

const FIGURES: readonly { readonly key: string; readonly title: string }[] = [
  { key: 'miou', title: 'mIoU' },
  { key: 'latency_ms_p95', title: 'p95 ms' },
  { key: 'peak_rss_mb', title: 'RSS MB' },
];

function figure(record: DecisionRecord, key: string): string {
  const c = record.claimed?.[key];
  const m = record.measured?.[key];
  const claimed = c === undefined ? '-' : fmt(c);
  return m === undefined ? claimed : `${claimed} → ${fmt(m)}`;
}

function when(iso: string | null): string {
  return iso ? iso.replace('T', ' ').replace(/\.\d+Z$|Z$/, '').slice(0, 19) : '-';
}

export function decisionsTable(records: readonly DecisionRecord[]): string {
  if (records.length === 0) return 'no decisions yet\n';
  const header = ['ID', 'VERSION', ...FIGURES.map((f) => `${f.title} (claimed → measured)`), 'DECISION', 'REASON CODE', 'DECIDED', 'REASON'];
  const rows = records.map((r) => [
    r.experiment_id ?? r.key,
    r.version ?? '-',
    ...FIGURES.map((f) => figure(r, f.key)),
    r.status === 'in_progress' ? `in progress (${r.stage})` : r.status,
    r.reason_code,
    when(r.decided_at ?? r.received_at),
    r.reason,
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => (row[i] as string).length)));
  const line = (cells: readonly string[]): string =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] as number)))
      .join('  ')
      .trimEnd();
  // What each code in the table means, once per code.
  const legend = [...new Set(records.map((r) => r.reason_code))].map((c) => `  ${explainCode(c)}`);
  return [line(header), ...rows.map(line), '', 'reason codes:', ...legend].join('\n') + '\n';
}
