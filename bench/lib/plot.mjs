// Line charts as SVG, rendered to PNG with sharp (no hosted services). Small on purpose: one or
// more panels side by side, each with series of (x, y) points, categorical or linear x.
import sharp from 'sharp';

const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#17becf'];
const esc = (s) => String(s).replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

function niceMax(v) {
  if (!(v > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

/**
 * panel: {title, xLabel, yLabel, categorical?: boolean, series: [{name, points: [[x, y]…], dashed?}], yMax?, hline?: {y, label}}
 */
function panelSvg(panel, ox, oy, w, h) {
  const m = { l: 64, r: 16, t: 34, b: 46 };
  const pw = w - m.l - m.r;
  const ph = h - m.t - m.b;
  const xs = [...new Set(panel.series.flatMap((s) => s.points.map((p) => p[0])))].sort((a, b) => a - b);
  const ys = panel.series.flatMap((s) => s.points.map((p) => p[1])).filter(Number.isFinite);
  const yMax = panel.yMax ?? niceMax(Math.max(...ys, panel.hline?.y ?? 0) * 1.05);
  const xMin = panel.categorical ? 0 : Math.min(...xs);
  const xMax = panel.categorical ? Math.max(1, xs.length - 1) : Math.max(...xs);
  const X = (x) => ox + m.l + (panel.categorical ? xs.indexOf(x) : x - xMin) / (xMax - xMin || 1) * pw;
  const Y = (y) => oy + m.t + ph - (y / yMax) * ph;
  const out = [];
  out.push(`<text x="${ox + m.l}" y="${oy + 20}" font-size="15" font-weight="bold">${esc(panel.title)}</text>`);
  for (let i = 0; i <= 5; i++) {
    const v = (yMax * i) / 5;
    out.push(`<line x1="${ox + m.l}" x2="${ox + m.l + pw}" y1="${Y(v)}" y2="${Y(v)}" stroke="#ddd"/>`);
    out.push(`<text x="${ox + m.l - 6}" y="${Y(v) + 4}" font-size="11" text-anchor="end">${+v.toPrecision(3)}</text>`);
  }
  const ticks = panel.categorical ? xs : (panel.xTicks ?? xs);
  for (const x of ticks) out.push(`<text x="${X(x)}" y="${oy + m.t + ph + 16}" font-size="11" text-anchor="middle">${+Number(x).toPrecision(4)}</text>`);
  out.push(`<line x1="${ox + m.l}" x2="${ox + m.l}" y1="${oy + m.t}" y2="${oy + m.t + ph}" stroke="#333"/>`);
  out.push(`<line x1="${ox + m.l}" x2="${ox + m.l + pw}" y1="${oy + m.t + ph}" y2="${oy + m.t + ph}" stroke="#333"/>`);
  out.push(`<text x="${ox + m.l + pw / 2}" y="${oy + h - 8}" font-size="12" text-anchor="middle">${esc(panel.xLabel)}</text>`);
  out.push(`<text transform="translate(${ox + 16},${oy + m.t + ph / 2}) rotate(-90)" font-size="12" text-anchor="middle">${esc(panel.yLabel)}</text>`);
  if (panel.hline) {
    out.push(`<line x1="${ox + m.l}" x2="${ox + m.l + pw}" y1="${Y(panel.hline.y)}" y2="${Y(panel.hline.y)}" stroke="#000" stroke-dasharray="6 4"/>`);
    out.push(`<text x="${ox + m.l + pw - 4}" y="${Y(panel.hline.y) - 5}" font-size="11" text-anchor="end">${esc(panel.hline.label)}</text>`);
  }
  let legend = 0;
  panel.series.forEach((s, i) => {
    const color = s.color ?? COLORS[i % COLORS.length];
    const pts = s.points.filter((p) => Number.isFinite(p[1]));
    if (pts.length > 1) out.push(`<polyline fill="none" stroke="${color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="5 3"' : ''} points="${pts.map((p) => `${X(p[0]).toFixed(1)},${Y(p[1]).toFixed(1)}`).join(' ')}"/>`);
    if (pts.length <= 60) for (const p of pts) out.push(`<circle cx="${X(p[0]).toFixed(1)}" cy="${Y(p[1]).toFixed(1)}" r="3" fill="${color}"/>`);
    if (!s.name) return;
    const ly = oy + m.t + 6 + legend++ * 16;
    out.push(`<line x1="${ox + m.l + 10}" x2="${ox + m.l + 28}" y1="${ly}" y2="${ly}" stroke="${color}" stroke-width="3"${s.dashed ? ' stroke-dasharray="5 3"' : ''}/>`);
    out.push(`<text x="${ox + m.l + 32}" y="${ly + 4}" font-size="11">${esc(s.name)}</text>`);
  });
  return out.join('\n');
}

/** panels side by side (columns) in rows; returns the SVG text. */
export function chartSvg({ title, panels, columns = panels.length, panelWidth = 520, panelHeight = 360, footer }) {
  const rows = Math.ceil(panels.length / columns);
  const W = columns * panelWidth;
  const H = rows * panelHeight + 40 + (footer ? 24 : 0);
  const body = panels.map((p, i) => panelSvg(p, (i % columns) * panelWidth, 40 + Math.floor(i / columns) * panelHeight, panelWidth, panelHeight)).join('\n');
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="DejaVu Sans, Arial, sans-serif">
<rect width="100%" height="100%" fill="#fff"/>
<text x="12" y="26" font-size="17" font-weight="bold">${esc(title)}</text>
${body}
${footer ? `<text x="12" y="${H - 8}" font-size="11" fill="#555">${esc(footer)}</text>` : ''}
</svg>`;
}

export async function writePng(svg, file) {
  await sharp(Buffer.from(svg), { density: 96 }).png().toFile(file);
}
