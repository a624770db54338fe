// Turns a results file of bench/run.mjs into aggregates (medians over repeats, ratios to bare
// session.run per repeat), the issue's targets with pass/miss, a Markdown summary and the plots.
//
//   node bench/report.mjs bench/results/<file>.json [--chart]   re-renders the Markdown (--chart: and
//   docs/bench-concurrency.png)
import { hostileMarkdown } from './hostile.mjs';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { chartSvg, writePng } from './lib/plot.mjs';
import { REPO } from './lib/procs.mjs';
import { median, round } from './lib/stats.mjs';

const LABEL = { bare: '(1) bare session.run', pipeline: '(2) pipeline in-process', grpc: '(3) inference gRPC direct', rest: '(4) gateway REST', 'gateway-grpc': '(4) gateway gRPC' };
const sum = (o) => Object.values(o ?? {}).reduce((a, b) => a + b, 0);

/** Per model, variant and concurrency: medians over repeats, ratios per repeat. */
export function aggregate(matrix) {
  const out = [];
  const key = (c) => `${c.variant}|${c.concurrency}`;
  const groups = new Map();
  for (const c of matrix.cells) (groups.get(key(c)) ?? groups.set(key(c), []).get(key(c))).push(c);
  for (const cells of groups.values()) {
    const { variant, concurrency } = cells[0];
    // `pipeline@X=1` is compared with `bare@X=1`: the same settings.
    const settings = variant.includes('@') ? variant.slice(variant.indexOf('@')) : '';
    const value = (x, field) => (typeof field === 'function' ? field(x) : x[field]);
    const ratioTo = (base, field) => {
      const rs = cells.map((x) => {
        const b = matrix.cells.find((y) => y.variant === base && y.concurrency === concurrency && y.repeat === x.repeat);
        return b && value(b, field) > 0 ? value(x, field) / value(b, field) : NaN;
      });
      return round(median(rs), 3);
    };
    // Server CPU per image (all processes of the path): robust to a busy machine, unlike img/s.
    const cpu = (x) => sum(x.cpu_ms_per_image);
    const codes = {};
    for (const x of cells) for (const [k, v] of Object.entries(x.codes)) codes[k] = (codes[k] ?? 0) + v;
    const processes = Object.keys(cells[0].rss_mb);
    out.push({
      variant,
      concurrency,
      repeats: cells.length,
      throughput: round(median(cells.map((x) => x.throughput)), 3),
      p50_ms: round(median(cells.map((x) => x.p50_ms))),
      p95_ms: round(median(cells.map((x) => x.p95_ms))),
      p99_ms: round(median(cells.map((x) => x.p99_ms))),
      codes,
      overloaded_ms_p95: round(median(cells.map((x) => x.error_ms?.OVERLOADED?.p95 ?? NaN))),
      rss_mb: Object.fromEntries(processes.map((p) => [p, Math.max(...cells.map((x) => x.rss_mb[p]))])),
      rss_total_mb: Math.max(...cells.map((x) => sum(x.rss_mb))),
      cpu_ms_per_image: Object.fromEntries(processes.map((p) => [p, round(median(cells.map((x) => x.cpu_ms_per_image[p] ?? NaN)), 0)])),
      throughput_vs_bare: ratioTo(`bare${settings}`, 'throughput'),
      p50_vs_bare: ratioTo(`bare${settings}`, 'p50_ms'),
      throughput_vs_grpc: ratioTo('grpc', 'throughput'),
      cpu_vs_bare: ratioTo(`bare${settings}`, cpu),
      cpu_vs_grpc: ratioTo('grpc', cpu),
      p50_vs_grpc: ratioTo('grpc', 'p50_ms'),
      stages_ms: cells[0].stages_ms ? Object.fromEntries(Object.keys(cells[0].stages_ms).map((s) => [s, round(median(cells.map((x) => x.stages_ms[s])))])) : undefined,
      loadavg: round(median(cells.map((x) => x.loadavg[0])), 1),
    });
  }
  const order = Object.keys(LABEL);
  return out.sort((a, b) => order.indexOf(a.variant) - order.indexOf(b.variant) || a.concurrency - b.concurrency);
}

const fmt = (v, d = 0) => (v === undefined || v === null || !Number.isFinite(v) ? '–' : v.toFixed(d));

export function targets(results) {
  const t = [];
  const full = results.matrix?.find((m) => m.model_dir.includes('full')) ?? results.matrix?.[0];
  const def = results.matrix?.find((m) => !m.model_dir.includes('full'));
  const row = (m, v, c) => m?.agg.find((a) => a.variant === v && a.concurrency === c);
  for (const m of [...new Set([full, def])].filter(Boolean)) {
    for (const c of m.agg.filter((a) => a.variant === 'pipeline').map((a) => a.concurrency)) {
      const r = row(m, 'pipeline', c);
      t.push({ target: `pipeline throughput ≥ 0.90 × bare session.run (${m.model}, c=${c})`, measured: `${fmt(r.throughput_vs_bare, 3)} × (CPU per image ${fmt(r.cpu_vs_bare, 3)} × bare's)`, ok: r.throughput_vs_bare >= 0.9 });
    }
    const rest10 = row(m, 'rest', 10);
    if (rest10) t.push({ target: `gateway REST throughput at c=10 ≥ 0.95 × direct gRPC (${m.model})`, measured: `${fmt(rest10.throughput_vs_grpc, 3)} × (CPU per image, inference + gateway, ${fmt(rest10.cpu_vs_grpc, 3)} × direct's)`, ok: rest10.throughput_vs_grpc >= 0.95 });
    for (const v of ['rest', 'gateway-grpc']) {
      const r1 = row(m, v, 1);
      if (r1) t.push({ target: `gateway ${v === 'rest' ? 'REST' : 'gRPC'} p50 at c=1 ≤ 1.10 × direct (${m.model})`, measured: `${fmt(r1.p50_vs_grpc, 3)} × (${fmt(r1.p50_ms)} vs ${fmt(row(m, 'grpc', 1)?.p50_ms)} ms)`, ok: r1.p50_vs_grpc <= 1.1 });
    }
    const g1 = row(m, 'grpc', 1);
    if (g1) t.push({ target: `single-image latency < 0.5 s (${m.model} ${m.input}, service defaults, gRPC p50 at c=1)`, measured: `${fmt(g1.p50_ms)} ms`, ok: g1.p50_ms < 500 });
  }
  for (const o of results.overhead ?? []) {
    for (const v of ['rest', 'gateway-grpc']) t.push({ target: `gateway ${v === 'rest' ? 'REST' : 'gRPC'} p50 at c=1 ≤ 1.10 × direct (${o.model_dir}, paired requests)`, measured: `${fmt(o.ratio_to_direct[v], 3)} × (median of ${o.pairs} per-request ratios; +${fmt(o.added_ms_median[v], 1)} ms)`, ok: o.ratio_to_direct[v] <= 1.1 });
  }
  for (const l of results.latency ?? []) t.push({ target: `single-image latency < 0.5 s (${l.model} ${l.input}, ${l.config}, gRPC p50 at c=1)`, measured: `${fmt(l.p50_ms)} ms (p95 ${fmt(l.p95_ms)})`, ok: l.p50_ms < 500 });
  for (const [mem, setting] of [[results.memory, 'service defaults'], [results.memory_recommended, `with ${Object.entries(results.memory_recommended?.env ?? {}).map(([k, v]) => `${k}=${v}`).join(' ')}`]]) {
    for (const r of mem?.results ?? []) {
      const limit = r.concurrency <= 10 ? 300 : 400;
      t.push({ target: `inference peak RSS ≤ ${limit} MB under ${r.concurrency} concurrent full-size uploads (${setting})`, measured: `${fmt(r.peak_rss_mb)} MB`, ok: r.peak_rss_mb <= limit && r.process_survived });
      if (r.concurrency > 10) {
        const full = r.sustained.queue_full ?? { p95_ms: r.sustained.error_ms?.OVERLOADED?.p95 };
        const p95 = Math.max(r.burst.overloaded_ms_p95 || 0, full.p95_ms ?? 0);
        t.push({ target: `under ${r.concurrency}: no OOM, excess answered OVERLOADED within 50 ms (${setting})`, measured: `alive: ${r.process_survived}; burst of ${r.concurrency}: ${r.burst.ok} OK, ${r.burst.overloaded} OVERLOADED — the ${r.burst.excess ?? '?'} beyond capacity in p95 ${fmt(r.burst.overloaded_ms_p95, 1)} ms / max ${fmt(r.burst.overloaded_ms_max, 1)} ms${r.burst.queue_timeouts ? `, ${r.burst.queue_timeouts} queue timeouts` : ''}; sustained queue-full OVERLOADED p95 ${fmt(full.p95_ms, 1)} ms`, ok: r.process_survived && p95 <= 50 && r.burst.other.length === 0 });
      }
    }
  }
  const peer10 = results.peer?.summary?.[10];
  if (peer10) {
    t.push({ target: 'at 10 concurrent uploads ≥ 2× the throughput of Flask + PyTorch', measured: `${fmt(peer10.throughput_ratio, 2)} × (${fmt(peer10.segserve.throughput, 2)} vs ${fmt(peer10.peer.throughput, 2)} img/s); CPU per image ${fmt(peer10.peer.cpu_ms_per_image)} vs ${fmt(peer10.segserve.cpu_ms_per_image)} ms = ${fmt(peer10.peer.cpu_ms_per_image / peer10.segserve.cpu_ms_per_image, 2)} ×`, ok: peer10.throughput_ratio >= 2 });
    t.push({ target: 'at 10 concurrent uploads ≤ ½ the memory of Flask + PyTorch', measured: `${fmt(peer10.memory_ratio, 2)} × (${fmt(peer10.segserve.peak_rss_mb)} MB inference + gateway vs ${fmt(peer10.peer.peak_rss_mb)} MB)`, ok: peer10.memory_ratio <= 0.5 });
  }
  const h = results.hostile?.targets;
  if (h) {
    t.push({ target: 'hostile inputs: no process dies', measured: h.no_process_died ? 'none died' : 'a process died', ok: h.no_process_died });
    t.push({ target: 'hostile inputs: each process’s peak RSS ≤ 512 MiB', measured: `worst attack: gateway ${fmt(h.peak_rss_le_512.gateway_mb)}, inference ${fmt(h.peak_rss_le_512.inference_mb)} MiB`, ok: h.peak_rss_le_512.met });
    t.push({ target: 'hostile inputs: every request gets a table code', measured: h.every_request_a_table_code ? 'all' : 'not all', ok: h.every_request_a_table_code });
    t.push({ target: 'hostile inputs: ordinary uploads within 2× their p95', measured: `worst ×${fmt(h.ordinary_p95_within_2x.worst_ratio, 2)}`, ok: h.ordinary_p95_within_2x.met });
  }
  return t;
}

export function markdown(results) {
  const lines = [];
  lines.push(`Run ${results.started_at} → ${results.finished_at}; command \`${results.command}\`; load average at start ${results.loadavg_start.join(' / ')}, at end ${(results.loadavg_end ?? []).join(' / ')}.`);
  lines.push('', `Machine: ${results.machine.cpu}, ${results.machine.cpus} CPUs, ${results.machine.memory_gb} GiB, Linux ${results.machine.kernel}, Node ${results.machine.node}, onnxruntime-node ${results.machine.onnxruntime_node}. Uploads: ${results.images.count} JPEGs, ${results.images.min_kib}–${results.images.max_kib} KiB (mean ${results.images.mean_kib}).`);
  lines.push('', '### Targets', '', '| target | measured | |', '|---|---|---|');
  for (const t of targets(results)) lines.push(`| ${t.target} | ${t.measured} | ${t.ok ? 'met' : '**missed**'} |`);
  for (const m of results.matrix ?? []) {
    lines.push('', `### ${m.model} (${m.input}, ${m.model_dir})`, '');
    const s = m.info.inference?.settings ?? m.info.bare?.settings;
    lines.push(`Service settings: ${JSON.stringify(s)}; ${m.agg[0]?.repeats ?? 0} repeats per cell, variants interleaved.`, '');
    lines.push('| variant | c | img/s | × bare | CPU × bare | p50 ms | p95 ms | p99 ms | codes | peak RSS MB | CPU ms/img | load |', '|---|---|---|---|---|---|---|---|---|---|---|---|');
    for (const a of m.agg) {
      lines.push(`| ${LABEL[a.variant]} | ${a.concurrency} | ${fmt(a.throughput, 2)} | ${fmt(a.throughput_vs_bare, 2)} | ${fmt(a.cpu_vs_bare, 2)} | ${fmt(a.p50_ms)} | ${fmt(a.p95_ms)} | ${fmt(a.p99_ms)} | ${Object.entries(a.codes).map(([k, v]) => `${k} ${v}`).join(', ')} | ${Object.entries(a.rss_mb).map(([k, v]) => `${k} ${fmt(v)}`).join(', ')} | ${Object.entries(a.cpu_ms_per_image).map(([k, v]) => `${k} ${fmt(v)}`).join(', ')} | ${fmt(a.loadavg, 1)} |`);
    }
    const st = m.agg.filter((a) => a.variant === 'pipeline');
    if (st.length) {
      lines.push('', 'Pipeline stages (median ms per image):', '', `| c | ${Object.keys(st[0].stages_ms).join(' | ')} |`, `|---|${Object.keys(st[0].stages_ms).map(() => '---').join('|')}|`);
      for (const a of st) lines.push(`| ${a.concurrency} | ${Object.values(a.stages_ms).map((v) => fmt(v, 1)).join(' | ')} |`);
    }
  }
  if (results.overhead?.length) {
    lines.push('', '### Gateway overhead at c=1 (paired: direct, REST, gRPC via gateway, request by request)', '', '| model | pairs | p50 direct ms | p50 REST ms | p50 gateway gRPC ms | REST / direct | gateway gRPC / direct | added ms REST / gRPC | load |', '|---|---|---|---|---|---|---|---|---|');
    for (const o of results.overhead) lines.push(`| ${o.model_dir} | ${o.pairs} | ${fmt(o.p50_ms.grpc)} | ${fmt(o.p50_ms.rest)} | ${fmt(o.p50_ms['gateway-grpc'])} | ${fmt(o.ratio_to_direct.rest, 3)} | ${fmt(o.ratio_to_direct['gateway-grpc'], 3)} | ${fmt(o.added_ms_median.rest, 1)} / ${fmt(o.added_ms_median['gateway-grpc'], 1)} | ${o.loadavg[0]} |`);
  }
  if (results.coldstart) {
    lines.push('', '### Cold start (median of repeats)', '', '| process | start → ready s | model load s | idle RSS MB |', '|---|---|---|---|');
    for (const [k, v] of Object.entries(results.coldstart.summary)) lines.push(`| ${k} | ${fmt(v.start_to_ready_s, 2)} | ${fmt(v.load_seconds, 2)} | ${fmt(v.idle_rss_mb)} |`);
  }
  if (results.latency?.length) {
    lines.push('', '### Single-image latency (gRPC direct, c=1)', '', '| model | config | p50 ms | p95 ms | peak RSS MB |', '|---|---|---|---|---|');
    for (const l of results.latency) lines.push(`| ${l.model} ${l.input} | ${l.config} | ${fmt(l.p50_ms)} | ${fmt(l.p95_ms)} | ${fmt(l.peak_rss_mb)} |`);
  }
  if (results.memory) {
    lines.push('', `### Memory (${results.memory.model_dir}; cgroup limit: ${results.memory.cgroup_limit_mb ?? 'none — RSS only'})`, '', '| setting | c | RSS after load MB | peak RSS MB | burst OK / OVERLOADED (queue timeouts) | queue-full OVERLOADED p95 / max ms (burst) | sustained img/s | sustained codes | sustained queue-full OVERLOADED p95 ms (queue timeouts) | alive |', '|---|---|---|---|---|---|---|---|---|---|');
    for (const [mem, setting] of [[results.memory, 'defaults'], [results.memory_recommended, Object.entries(results.memory_recommended?.env ?? {}).map(([k, v]) => `${k}=${v}`).join(' ')]]) {
      for (const r of mem?.results ?? []) lines.push(`| ${setting} | ${r.concurrency} | ${fmt(r.rss_after_load_mb)} | ${fmt(r.peak_rss_mb)} | ${r.burst.ok} / ${r.burst.overloaded} (${r.burst.queue_timeouts ?? '?'}) | ${fmt(r.burst.overloaded_ms_p95, 1)} / ${fmt(r.burst.overloaded_ms_max, 1)} | ${fmt(r.sustained.throughput, 2)} | ${JSON.stringify(r.sustained.codes)} | ${fmt(r.sustained.queue_full?.p95_ms ?? r.sustained.error_ms?.OVERLOADED?.p95, 1)} (${r.sustained.queue_timeouts ?? '?'}) | ${r.process_survived} |`);
    }
  }
  if (results.memory_sweep) {
    const m = results.memory_sweep;
    lines.push('', `### Memory at ${m.concurrency} concurrent uploads by setting (${m.model_dir}; fresh process per run, ${m.seconds} s each, runs interleaved)`, '', '| setting | peak RSS MB (max of runs) | RSS after load MB | img/s (median) | runs |', '|---|---|---|---|---|');
    for (const r of m.rows) lines.push(`| ${r.label} | ${fmt(r.peak_rss_mb)} | ${r.runs.map((x) => fmt(x.rss_after_load_mb)).join(', ')} | ${fmt(r.throughput, 2)} | ${r.runs.length} |`);
  }
  if (results.peer) {
    const p = results.peer;
    lines.push('', `### Flask + PyTorch peer (${p.model_dir}; torch ${p.peer.torch}, ${p.peer.threads} threads, ${p.peer.server}; mask agreement with segserve ${fmt(p.mask_agreement * 100, 2)} %)`, '', '| c | side | img/s | p50 ms | p95 ms | peak RSS MB | CPU ms/img | codes |', '|---|---|---|---|---|---|---|---|');
    for (const [c, s] of Object.entries(p.summary)) {
      for (const side of ['segserve', 'peer']) lines.push(`| ${c} | ${side} | ${fmt(s[side].throughput, 2)} | ${fmt(s[side].p50_ms)} | ${fmt(s[side].p95_ms)} | ${fmt(s[side].peak_rss_mb)} (${Object.entries(s[side].peak_rss_by_process_mb).map(([k, v]) => `${k} ${fmt(v)}`).join(', ')}) | ${fmt(s[side].cpu_ms_per_image)} | ${JSON.stringify(s[side].codes)} |`);
      lines.push(`| ${c} | ratio | ${fmt(s.throughput_ratio, 2)} × | | | ${fmt(s.memory_ratio, 2)} × | | |`);
    }
  }
  if (results.hostile) lines.push('', `### Hostile inputs (${results.hostile.model})`, '', hostileMarkdown(results.hostile));
  return lines.join('\n') + '\n';
}

export async function plots(results, outDir = path.join(REPO, 'docs')) {
  const panels = [];
  for (const m of results.matrix ?? []) {
    const variants = [...new Set(m.agg.map((a) => a.variant))];
    panels.push({
      title: `${m.model} ${m.input}: latency vs concurrency`,
      xLabel: 'concurrent requests',
      yLabel: 'latency ms (solid p50, dashed p95)',
      categorical: true,
      series: variants.flatMap((v, i) => [
        { name: `${LABEL[v]} p50`, points: m.agg.filter((a) => a.variant === v).map((a) => [a.concurrency, a.p50_ms]), color: ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd'][i] },
        { name: `p95`, points: m.agg.filter((a) => a.variant === v).map((a) => [a.concurrency, a.p95_ms]), dashed: true, color: ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd'][i] },
      ]),
    });
    panels.push({
      title: `${m.model} ${m.input}: peak RSS vs concurrency`,
      xLabel: 'concurrent requests',
      yLabel: 'peak RSS MB (all processes of the path)',
      categorical: true,
      hline: m.model.includes('full') ? { y: 300, label: 'target at c=10: 300 MB (inference)' } : undefined,
      series: [
        ...variants.map((v, i) => ({ name: LABEL[v], points: m.agg.filter((a) => a.variant === v).map((a) => [a.concurrency, a.rss_total_mb]), color: ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd'][i] })),
        ...(results.peer && m.model_dir === results.peer.model_dir ? [{ name: 'Flask + PyTorch peer', points: Object.entries(results.peer.summary).map(([c, s]) => [Number(c), s.peer.peak_rss_mb]), color: '#000', dashed: true }] : []),
        ...(results.memory_recommended && m.model_dir === results.memory_recommended.model_dir
          ? [{ name: 'inference alone, recommended setting (see Memory)', points: results.memory_recommended.results.map((r) => [r.concurrency, r.peak_rss_mb]), color: '#8c564b', dashed: true }]
          : []),
      ],
    });
  }
  // Legends of the latency panels list each variant once (p95 entries share the colour).
  for (const p of panels) p.series = p.series.map((s) => (s.name === 'p95' ? { ...s, name: '' } : s));
  if (panels.length) {
    const svg = chartSvg({ title: `segserve benchmarks — ${results.machine.cpu}, ${results.machine.cpus} cores, ${results.started_at.slice(0, 10)}`, panels, columns: 2, footer: `bench/run.mjs; medians of ${results.repeats} interleaved repeats; load average at start ${results.loadavg_start[0]}` });
    const file = path.join(outDir, 'bench-concurrency.png');
    await writePng(svg, file);
    writeFileSync(path.join(REPO, 'bench', 'results', 'bench-concurrency.svg'), svg);
    return [file];
  }
  return [];
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const file = process.argv[2];
  const results = JSON.parse(readFileSync(file, 'utf8'));
  for (const m of results.matrix ?? []) m.agg = aggregate(m);
  writeFileSync(file.replace(/\.json$/, '.md'), markdown(results));
  console.log(markdown(results));
  if (process.argv.includes('--chart')) console.log(await plots(results));
}
