// `npm run bench`: every benchmark of issue 8 in one run, results to bench/results/<stamp>.json
// (+ .md summary); with --chart also the plot to docs/bench-concurrency.png (the one the docs show:
// `npm run bench` passes it; other runs leave the docs alone). See docs/benchmarks.md.
//
//   node bench/run.mjs [--models models/facade-ads-full/2,models/facade-ads/2]
//                      [--concurrency 1,10,50] [--repeats 3] [--cell-seconds 10]
//                      [--variants bare,pipeline,grpc,rest,gateway-grpc]  (also bare@VAR=value,…
//                       and pipeline@VAR=value,…: the same with other service settings)
//                      [--scenarios matrix,overhead,latency,coldstart,memory,memory-sweep,peer,hostile] [--quick]
//                      [--chart] [--before /path/to/other/checkout [--turns 2]]
//
// --quick: one repeat, short cells, concurrency 1,10 — a smoke test of the whole bench (~3 min).
// Run it on a quiet machine; it prints the load average next to every cell.
// --before: the same command (without --before, --turns, --chart; with --no-plots) run by each tree's own
// bench/run.mjs in turn, before–after, after–before, … for --turns pairs (bench/lib/trees.mjs);
// each run's output with its tree's name.
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { runColdStart } from './coldstart.mjs';
import { runHostile } from './hostile.mjs';
import { runMatrix, VARIANTS } from './matrix.mjs';
import { runMemory, runMemorySweep } from './memory.mjs';
import { runPeer } from './peer.mjs';
import { runOverhead } from './overhead.mjs';
import { aggregate, markdown, plots, targets } from './report.mjs';
import { closedLoop } from './lib/load.mjs';
import { segmenterClient, segment } from './lib/clients.mjs';
import { describeImages, loadImages } from './lib/images.mjs';
import { MemoryWatch, REPO, defaultModelDir, loadAverage, machine, startInference } from './lib/procs.mjs';
import { median, round } from './lib/stats.mjs';
import { args, withoutFlags } from './lib/args.mjs';
import { runTreesInTurn, treesOf } from './lib/trees.mjs';

/** Single-image latency: c=1 over gRPC with the service defaults and with two sessions of 1 thread. */
async function runLatency({ modelDir, images, repeats, requests, log }) {
  const configs = [
    { config: 'defaults (1 session × 2 threads)', env: {} },
    { config: 'SEGSERVE_ORT_SESSIONS=2 (2 sessions × 1 thread)', env: { SEGSERVE_ORT_SESSIONS: '2' } },
  ];
  const procs = [];
  for (const c of configs) procs.push(await startInference(modelDir, c.env));
  const out = configs.map((c) => ({ ...c, cells: [] }));
  try {
    const clients = procs.map((p) => segmenterClient(`127.0.0.1:${p.line.grpc_port}`));
    const model = procs[0].line.model;
    const send = (client) => (i) => segment(client, { model, image: images[i % images.length].bytes, mask_format: 'PNG' });
    for (const client of clients) await closedLoop({ concurrency: 1, requests: 3, send: send(client) });
    for (let r = 0; r < repeats; r++) {
      for (let k = 0; k < configs.length; k++) {
        const i = (k + r) % configs.length;
        const watch = new MemoryWatch({ inference: procs[i].pid }).start();
        const s = await closedLoop({ concurrency: 1, requests, send: send(clients[i]) });
        s.rss = watch.stop().inference.peakRssMb;
        s.loadavg = loadAverage();
        out[i].cells.push(s);
        log(`  latency ${model} ${configs[i].config}: p50 ${s.p50_ms} ms p95 ${s.p95_ms} ms (load ${s.loadavg[0]})`);
      }
    }
    for (const c of clients) c.close();
    return out.map((o, i) => ({
      model,
      input: `${procs[i].line.model}`.includes('full') ? '1152x768' : undefined,
      config: o.config,
      p50_ms: round(median(o.cells.map((c) => c.p50_ms))),
      p95_ms: round(median(o.cells.map((c) => c.p95_ms))),
      peak_rss_mb: round(Math.max(...o.cells.map((c) => c.rss))),
      cells: o.cells,
    }));
  } finally {
    for (const p of procs) await p.stop();
  }
}

const a = args(process.argv.slice(2));
if (a.before !== undefined) {
  // --no-plots: a tree from before --chart writes its plot unless told not to.
  const own = [...withoutFlags(process.argv.slice(2), ['before', 'turns'], ['chart']), '--no-plots'];
  const trees = treesOf(a.before);
  console.log(`bench/run.mjs ${own.join(' ')}, trees in turn: ${Object.entries(trees).map(([n, d]) => `${n} ${d}`).join(', ')}`);
  await runTreesInTurn(trees, Number(a.turns ?? 2), (_tree, dir) => [path.join(dir, 'bench', 'run.mjs'), own], { onLine: (tree, line) => console.log(`[${tree}] ${line}`) });
  process.exit(0);
}
const quick = a.quick === 'true';
const models = a.models ? a.models.split(',').map((m) => path.resolve(REPO, m)) : [path.join(REPO, 'models', 'facade-ads-full', '2'), defaultModelDir()];
const concurrencies = (a.concurrency ?? (quick ? '1,10' : '1,10,50')).split(',').map(Number);
const repeats = Number(a.repeats ?? (quick ? 1 : 3));
const cellSeconds = Number(a['cell-seconds'] ?? (quick ? 3 : 10));
const variants = (a.variants ?? VARIANTS.join(',')).split(',');
const scenarios = new Set((a.scenarios ?? 'matrix,overhead,latency,coldstart,memory,memory-sweep,peer,hostile').split(','));
const images = loadImages(a.images);
const log = (line) => console.log(line);

const stamp = new Date().toISOString().replace(/[:.]/g, '-').slice(0, 19);
const results = {
  started_at: new Date().toISOString(),
  command: `node bench/run.mjs ${process.argv.slice(2).join(' ')}`.trim(),
  machine: machine(),
  loadavg_start: loadAverage(),
  images: describeImages(images),
  repeats,
  concurrencies,
};
const outDir = path.join(REPO, 'bench', 'results');
mkdirSync(outDir, { recursive: true });
const file = path.join(outDir, `${stamp}${quick ? '-quick' : ''}.json`);
const save = () => writeFileSync(file, JSON.stringify(results, null, 1));

log(`segserve bench ${results.command}\n  ${JSON.stringify(results.machine)}\n  load average ${results.loadavg_start.join(' ')}; uploads ${JSON.stringify(results.images)}`);
if (scenarios.has('matrix')) {
  results.matrix = [];
  for (const modelDir of models) {
    log(`matrix ${path.relative(REPO, modelDir)}`);
    const m = await runMatrix({ modelDir, images, concurrencies, repeats, variants, cellSeconds, log });
    m.agg = aggregate(m);
    results.matrix.push(m);
    save();
  }
}
if (scenarios.has('overhead')) {
  results.overhead = [];
  for (const modelDir of models) {
    log(`gateway overhead, paired requests ${path.relative(REPO, modelDir)}`);
    results.overhead.push(await runOverhead({ modelDir, images, pairs: quick ? 5 : 30, log }));
    save();
  }
}
if (scenarios.has('latency')) {
  results.latency = [];
  for (const modelDir of models) {
    log(`latency ${path.relative(REPO, modelDir)}`);
    const l = await runLatency({ modelDir, images, repeats, requests: quick ? 4 : 12, log });
    for (const x of l) x.input = modelDir.includes('full') ? '1152x768' : '288x192';
    results.latency.push(...l);
    save();
  }
}
if (scenarios.has('coldstart')) {
  log('cold start');
  results.coldstart = await runColdStart({ modelDirs: models, repeats, log });
  save();
}
const fullModel = models.find((m) => m.includes('full')) ?? models[0];
if (scenarios.has('memory')) {
  log(`memory ${path.relative(REPO, fullModel)}`);
  results.memory = await runMemory({ modelDir: fullModel, images, concurrencies: [10, 50], seconds: quick ? 8 : 30, log });
  save();
}
if (scenarios.has('memory-sweep')) {
  log(`memory sweep ${path.relative(REPO, fullModel)}`);
  results.memory_sweep = await runMemorySweep({ modelDir: fullModel, images, seconds: quick ? 6 : 20, repeats: quick ? 1 : 2, log });
  save();
}
if (scenarios.has('peer')) {
  log(`Flask + PyTorch peer ${path.relative(REPO, fullModel)}`);
  results.peer = await runPeer({ modelDir: fullModel, images, concurrencies: [1, 10], repeats, cellSeconds: quick ? 6 : 20, log });
  save();
}
if (scenarios.has('hostile')) {
  // Issue 11: every attack alone and all at once against inference + gateway as the image runs
  // them, with the bundled default model (what the stable Deployment serves).
  const defaultModel = models.find((m) => !m.includes('full')) ?? models[0];
  log(`hostile ${path.relative(REPO, defaultModel)}`);
  results.hostile = await runHostile({ modelDir: defaultModel, images, log });
  save();
}
results.finished_at = new Date().toISOString();
results.loadavg_end = loadAverage();
results.targets = targets(results);
save();
writeFileSync(file.replace(/\.json$/, '.md'), markdown(results));
const pngs = a.chart === 'true' ? await plots(results) : [];
log(`\n${markdown(results)}\nresults: ${path.relative(REPO, file)}${pngs.length ? `\nplots: ${pngs.map((p) => path.relative(REPO, p)).join(', ')}` : ''}`);
