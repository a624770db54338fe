// Draws the Grafana dashboard's panels from real Prometheus range-query results as SVG (then
// PNG with sharp). No Grafana runs here: this is a small stand-in that follows the
// dashboard's own layout (gridPos), titles, units, legends, thresholds and annotations.
import type { Json } from './render.js';

export interface Series {
  readonly legend: string;
  readonly points: readonly (readonly [number, number])[]; // [unix seconds, value]
}

export interface PanelData {
  readonly panel: Json;
  readonly series: readonly Series[];
}

export interface Annotation {
  readonly time: number;
  readonly text: string;
  readonly color: string;
}

const COL = 62; // px per grid column (24 columns)
const ROW = 34; // px per grid row unit
const PAD = 6;
const BG = '#111217';
const PANEL_BG = '#181b1f';
const GRID = '#2c3235';
const TEXT = '#ccccdc';
const MUTED = '#8e8e8e';
const PALETTE = ['#73bf69', '#f2cc0c', '#8ab8ff', '#ff780a', '#f2495c', '#5794f2', '#b877d9', '#fade2a', '#c4162a', '#96d98d', '#ffb357', '#ca95e5'];
const PHASE_COLORS: Record<string, string> = { Idle: '#5a5a5a', Verifying: '#8ab8ff', Canary: '#f2cc0c', Promoting: '#73bf69', Baking: '#96d98d', Succeeded: '#1a7f37', Failed: '#f2495c' };

const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

export function formatValue(v: number, unit: string): string {
  if (!Number.isFinite(v)) return String(v);
  const fixed = (x: number, d = 2): string => (Math.abs(x) >= 100 ? x.toFixed(0) : Math.abs(x) >= 10 ? x.toFixed(1) : x.toFixed(d));
  switch (unit) {
    case 'bytes': {
      const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
      let x = v;
      let i = 0;
      while (Math.abs(x) >= 1024 && i < units.length - 1) {
        x /= 1024;
        i++;
      }
      return `${fixed(x, 1)} ${units[i]}`;
    }
    case 's':
      return Math.abs(v) < 1 ? `${fixed(v * 1000, 1)} ms` : `${fixed(v)} s`;
    case 'percentunit':
      return `${fixed(v * 100, 1)}%`;
    case 'percent':
      return `${fixed(v, 0)}%`;
    case 'reqps':
      return `${fixed(v)} req/s`;
    case 'ops':
      return `${fixed(v)} ops/s`;
    default:
      return fixed(v);
  }
}

function legendOf(format: string, metric: Readonly<Record<string, string>>): string {
  const text = format.replace(/\{\{\s*(\w+)\s*\}\}/g, (_, k: string) => metric[k] ?? '');
  return text.trim() || JSON.stringify(metric);
}

/** Prometheus matrix result → series with the panel target's legend format. */
export function toSeries(result: readonly { metric: Record<string, string>; values: [number, string][] }[], legendFormat: string): Series[] {
  return result.map((r) => ({ legend: legendOf(legendFormat, r.metric), points: r.values.map(([t, v]) => [t, Number(v)] as const) }));
}

function thresholdLines(panel: Json): { value: number; color: string }[] {
  if (panel.fieldConfig?.defaults?.custom?.thresholdsStyle?.mode !== 'line') return [];
  const steps = (panel.fieldConfig.defaults.thresholds?.steps ?? []) as { color: string; value: number | null }[];
  return steps.filter((s) => s.value !== null).map((s) => ({ value: s.value as number, color: s.color === 'red' ? '#f2495c' : s.color === 'orange' ? '#ff9830' : s.color }));
}

function drawTimeseries(data: PanelData, x: number, y: number, w: number, h: number, t0: number, t1: number, annotations: readonly Annotation[]): string {
  const unit: string = data.panel.fieldConfig?.defaults?.unit ?? 'short';
  const legendW = Math.min(260, Math.floor(w * 0.38));
  const plot = { x: x + 64, y: y + 30, w: w - 64 - legendW - 12, h: h - 30 - 24 };
  const values = data.series.flatMap((s) => s.points.map((p) => p[1])).filter(Number.isFinite);
  const thresholds = thresholdLines(data.panel);
  const fixedMin = data.panel.fieldConfig?.defaults?.min as number | undefined;
  const fixedMax = data.panel.fieldConfig?.defaults?.max as number | undefined;
  let lo = fixedMin ?? Math.min(0, ...values);
  // A panel's max clips the axis, as in Grafana (lines above it leave the plot).
  let hi = fixedMax ?? Math.max(...values, ...thresholds.map((t) => t.value)) * 1.05;
  if (!Number.isFinite(hi) || hi <= lo) hi = lo + 1;
  if (!Number.isFinite(lo)) lo = 0;
  const clip = `clip${data.panel.id as number}`;
  const sx = (t: number): number => plot.x + ((t - t0) / Math.max(1, t1 - t0)) * plot.w;
  const sy = (v: number): number => plot.y + plot.h - ((v - lo) / (hi - lo)) * plot.h;
  const out: string[] = [];
  for (let i = 0; i <= 4; i++) {
    const v = lo + ((hi - lo) * i) / 4;
    const yy = sy(v);
    out.push(`<line x1="${plot.x}" y1="${yy}" x2="${plot.x + plot.w}" y2="${yy}" stroke="${GRID}" stroke-width="1"/>`);
    out.push(`<text x="${plot.x - 6}" y="${yy + 4}" fill="${MUTED}" font-size="10" text-anchor="end">${esc(formatValue(v, unit))}</text>`);
  }
  for (let i = 0; i <= 4; i++) {
    const t = t0 + ((t1 - t0) * i) / 4;
    const label = new Date(t * 1000).toISOString().slice(11, 19);
    out.push(`<text x="${sx(t)}" y="${plot.y + plot.h + 14}" fill="${MUTED}" font-size="10" text-anchor="middle">${label}</text>`);
  }
  for (const th of thresholds) {
    if (th.value < lo || th.value > hi) continue;
    out.push(`<line x1="${plot.x}" y1="${sy(th.value)}" x2="${plot.x + plot.w}" y2="${sy(th.value)}" stroke="${th.color}" stroke-width="1.5" stroke-dasharray="6 4"/>`);
  }
  for (const a of annotations) {
    if (a.time < t0 || a.time > t1) continue;
    out.push(`<line x1="${sx(a.time)}" y1="${plot.y}" x2="${sx(a.time)}" y2="${plot.y + plot.h}" stroke="${a.color}" stroke-width="1.5" stroke-dasharray="3 3"/>`);
    out.push(`<text x="${sx(a.time) + 3}" y="${plot.y + 10}" fill="${a.color}" font-size="9">${esc(a.text)}</text>`);
  }
  out.push(`<clipPath id="${clip}"><rect x="${plot.x}" y="${plot.y - 1}" width="${plot.w}" height="${plot.h + 2}"/></clipPath>`);
  data.series.forEach((s, i) => {
    const color = PALETTE[i % PALETTE.length]!;
    const pts = s.points.filter((p) => Number.isFinite(p[1]));
    if (pts.length === 0) return;
    // A gap of more than a few scrape intervals breaks the line, as Grafana does.
    const path = pts.map((p, k) => `${k === 0 || p[0] - pts[k - 1]![0] > 5 ? 'M' : 'L'}${sx(p[0]).toFixed(1)},${sy(p[1]).toFixed(1)}`).join(' ');
    out.push(`<path d="${path}" fill="none" stroke="${color}" stroke-width="1.5" clip-path="url(#${clip})"/>`);
  });
  // Legend: name, last, max (the dashboard's table legend).
  const lx = plot.x + plot.w + 12;
  out.push(`<text x="${lx}" y="${y + 40}" fill="${MUTED}" font-size="10">name</text><text x="${x + w - 70}" y="${y + 40}" fill="${MUTED}" font-size="10" text-anchor="end">last</text><text x="${x + w - 10}" y="${y + 40}" fill="${MUTED}" font-size="10" text-anchor="end">max</text>`);
  const rows = Math.floor((h - 60) / 13);
  data.series.slice(0, rows).forEach((s, i) => {
    const yy = y + 55 + i * 13;
    const finite = s.points.map((p) => p[1]).filter(Number.isFinite);
    const last = finite.at(-1) ?? NaN;
    const max = finite.length ? Math.max(...finite) : NaN;
    const room = Math.max(8, Math.floor((legendW - 140) / 6));
    const name = s.legend.length > room ? `${s.legend.slice(0, room - 1)}…` : s.legend;
    out.push(`<rect x="${lx}" y="${yy - 7}" width="8" height="3" fill="${PALETTE[i % PALETTE.length]}"/>`);
    out.push(`<text x="${lx + 12}" y="${yy}" fill="${TEXT}" font-size="10">${esc(name)}</text>`);
    out.push(`<text x="${x + w - 70}" y="${yy}" fill="${TEXT}" font-size="10" text-anchor="end">${esc(formatValue(last, unit))}</text>`);
    out.push(`<text x="${x + w - 10}" y="${yy}" fill="${TEXT}" font-size="10" text-anchor="end">${esc(formatValue(max, unit))}</text>`);
  });
  if (data.series.length > rows) out.push(`<text x="${lx}" y="${y + h - 8}" fill="${MUTED}" font-size="10">+${data.series.length - rows} more</text>`);
  return out.join('');
}

function drawStateTimeline(data: PanelData, x: number, y: number, w: number, h: number, t0: number, t1: number): string {
  const plot = { x: x + 130, y: y + 34, w: w - 130 - 12, h: h - 34 - 40 };
  const sx = (t: number): number => plot.x + ((t - t0) / Math.max(1, t1 - t0)) * plot.w;
  // One row per model; a series per (model, phase) is 1 while that phase is current.
  const byModel = new Map<string, { phase: string; points: readonly (readonly [number, number])[] }[]>();
  for (const s of data.series) {
    const [model = '', phase = ''] = s.legend.split(' ');
    byModel.set(model, [...(byModel.get(model) ?? []), { phase, points: s.points }]);
  }
  const out: string[] = [];
  const rowH = Math.min(28, plot.h / Math.max(1, byModel.size));
  [...byModel.entries()].forEach(([model, phases], r) => {
    const yy = plot.y + r * (rowH + 6);
    out.push(`<text x="${x + 10}" y="${yy + rowH / 2 + 4}" fill="${TEXT}" font-size="11">${esc(model)}</text>`);
    for (const { phase, points } of phases) {
      const on = points.filter((p) => p[1] > 0);
      for (const [t] of on) out.push(`<rect x="${sx(t).toFixed(1)}" y="${yy}" width="${Math.max(1.5, plot.w / Math.max(1, (t1 - t0) / 2)).toFixed(1)}" height="${rowH}" fill="${PHASE_COLORS[phase] ?? '#888'}"/>`);
    }
  });
  let lx = plot.x;
  for (const [phase, color] of Object.entries(PHASE_COLORS)) {
    out.push(`<rect x="${lx}" y="${y + h - 22}" width="10" height="10" fill="${color}"/><text x="${lx + 14}" y="${y + h - 13}" fill="${TEXT}" font-size="10">${phase}</text>`);
    lx += 24 + phase.length * 6;
  }
  return out.join('');
}

/** The whole dashboard as one SVG document. */
export function renderDashboardSvg(dashboard: Json, panels: readonly PanelData[], annotations: readonly Annotation[], t0: number, t1: number): string {
  const all: Json[] = dashboard.panels;
  const bottom = Math.max(...all.map((p) => (p.gridPos.y as number) + (p.gridPos.h as number)));
  const width = 24 * COL;
  const height = bottom * ROW + 50;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="DejaVu Sans, Liberation Sans, sans-serif">`,
    `<rect width="${width}" height="${height}" fill="${BG}"/>`,
    `<text x="12" y="28" fill="${TEXT}" font-size="18">${esc(dashboard.title)}</text>`,
    `<text x="${width - 12}" y="28" fill="${MUTED}" font-size="11" text-anchor="end">${new Date(t0 * 1000).toISOString().slice(0, 19)}Z → ${new Date(t1 * 1000).toISOString().slice(11, 19)}Z · rendered from Prometheus data by test/deploy/dashboard.e2e.test.ts (no Grafana)</text>`,
  ];
  for (const p of all) {
    const x = p.gridPos.x * COL + PAD;
    const y = p.gridPos.y * ROW + 44 + PAD;
    const w = p.gridPos.w * COL - 2 * PAD;
    const h = p.gridPos.h * ROW - 2 * PAD;
    if (p.type === 'row') {
      out.push(`<text x="${x}" y="${y + 18}" fill="${TEXT}" font-size="14" font-weight="bold">${esc(p.title)}</text>`);
      continue;
    }
    const data = panels.find((d) => d.panel.id === p.id) ?? { panel: p, series: [] };
    out.push(`<rect x="${x}" y="${y}" width="${w}" height="${h}" rx="3" fill="${PANEL_BG}" stroke="${GRID}"/>`);
    out.push(`<text x="${x + 10}" y="${y + 18}" fill="${TEXT}" font-size="12" font-weight="bold">${esc(p.title)}</text>`);
    if (data.series.length === 0) out.push(`<text x="${x + w / 2}" y="${y + h / 2}" fill="${MUTED}" font-size="12" text-anchor="middle">No data</text>`);
    else if (p.type === 'state-timeline') out.push(drawStateTimeline(data, x, y, w, h, t0, t1));
    else out.push(drawTimeseries(data, x, y, w, h, t0, t1, annotations));
  }
  out.push('</svg>');
  return out.join('\n');
}
