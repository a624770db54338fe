// The model run alone under onnxruntime's memory settings (issue 15 item 4): one session with
// the service's threads, a fresh process per setting and repeat, settings interleaved (the order
// rotates every repeat), each with the container image's malloc settings. Reports ms per run
// (median of the runs), CPU per run, RSS after warm-up and the peak, and the ratio to the
// arena-on setting of the same repeat.
//
//   node bench/ort-settings.mjs [--model models/facade-ads-full/2] [--runs 8] [--repeats 3] [--settings 0,3,5]
// (--settings: the rows to run, by index into SETTINGS; row 0, arena-on, is always run as the reference)
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { INFERENCE_MALLOC_ENV } from '@segserve/runtime';
import { pickByIndex } from './lib/args.mjs';
import { REPO, loadAverage } from './lib/procs.mjs';
import { median, round } from './lib/stats.mjs';

const arg = (name, d) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : d;
};
const modelDir = path.resolve(REPO, arg('model', 'models/facade-ads-full/2'));
const runs = Number(arg('runs', '8'));
const repeats = Number(arg('repeats', '3'));
const intra = Number(arg('intra', '2'));

// The image's malloc settings include glibc's THP tunable; '' switches it off for a row.
const NO_THP = { GLIBC_TUNABLES: '' };
export const SETTINGS = [
  { name: 'arena on, pattern on', arena: true, pattern: true, env: NO_THP },
  { name: 'arena off, pattern on (the serving settings before issue 15)', arena: false, pattern: true, env: NO_THP },
  { name: 'arena off, pattern off', arena: false, pattern: false, env: NO_THP },
  { name: 'arena off, pattern on, malloc THP (glibc.malloc.hugetlb=1; the serving settings where SEGSERVE_ORT_ARENA=auto keeps the arena off, e.g. 1152×768)', arena: false, pattern: true, env: {} },
  { name: 'arena on, pattern on, malloc THP (the serving settings where auto turns the arena on: small activations)', arena: true, pattern: true, env: {} },
  // Without the pattern the arena reuses its chunks tensor by tensor: one run's activations stay
  // resident, not the first run's chunks plus the pattern's single block.
  { name: 'arena on, pattern off', arena: true, pattern: false, env: NO_THP },
  { name: 'arena on, pattern off, malloc THP', arena: true, pattern: false, env: {} },
];
const chosen = [...new Set([SETTINGS[0], ...pickByIndex(SETTINGS, arg('settings', ''), 'settings')])];

const rows = chosen.map((setting) => ({ ...setting, cells: [] }));
for (let r = 0; r < repeats; r++) {
  for (let k = 0; k < rows.length; k++) {
    const row = rows[(k + r) % rows.length];
    const load = loadAverage();
    const out = execFileSync(process.execPath, [path.join(REPO, 'bench', 'workers', 'ort-run.mjs'), modelDir, String(row.arena), String(row.pattern), String(runs), String(intra)], {
      env: { ...process.env, ...INFERENCE_MALLOC_ENV, ...row.env },
      encoding: 'utf8',
    });
    const cell = JSON.parse(out.trim().split('\n').at(-1));
    cell.median_ms = median(cell.ms);
    cell.repeat = r;
    cell.loadavg = load;
    row.cells.push(cell);
    console.error(`r${r} ${row.name}: ${round(cell.median_ms)} ms/run, CPU ${round(cell.cpu_ms_per_run)} ms (sys ${round(cell.sys_ms_per_run)}), THP faults/run ${round(cell.thp_faults_per_run)} (fallbacks ${round(cell.thp_fallbacks_per_run)}), RSS after warm-up ${round(cell.rss_after_warmup_mb)} MB, peak ${round(cell.peak_mb)} MB (load ${load[0]})`);
  }
}
const arenaOn = rows[0];
const result = rows.map((row) => ({
  setting: row.name,
  median_ms: round(median(row.cells.map((c) => c.median_ms))),
  cpu_ms_per_run: round(median(row.cells.map((c) => c.cpu_ms_per_run))),
  sys_ms_per_run: round(median(row.cells.map((c) => c.sys_ms_per_run))),
  per_repeat_ms: row.cells.map((c) => round(c.median_ms)),
  rss_after_warmup_mb: round(Math.max(...row.cells.map((c) => c.rss_after_warmup_mb))),
  peak_mb: round(Math.max(...row.cells.map((c) => c.peak_mb))),
  // Ratio to arena-on in the same repeat, then the median over repeats.
  x_arena_on: round(median(row.cells.map((c) => c.median_ms / arenaOn.cells.find((a) => a.repeat === c.repeat).median_ms)), 3),
  loadavg: row.cells.map((c) => c.loadavg[0]),
}));
console.log(JSON.stringify({ model_dir: path.relative(REPO, modelDir), runs, repeats, intra, rows: result }, null, 2));
