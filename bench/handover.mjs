// The hand-over between the main thread and the onnxruntime worker (issue 15): one session of the
// 1152×768 model on the real OrtWorkerPool, Segment calls on decoded golden photographs, and for
// each the wall time less the worker's own stages (tensor build, run, argmax) — the messages both
// ways, the RGB hand-over, wake-ups. With --before <checkout>, that tree's build runs in turn
// (a separate process per tree, before–after–after–before: bench/lib/trees.mjs). Run under the service's malloc settings.
//
//   node bench/handover.mjs [--runs 10] [--before /path/to/other/checkout] [--model models/facade-ads-full/2]
import os from 'node:os';
import path from 'node:path';
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { args } from './lib/args.mjs';
import { loadImages } from './lib/images.mjs';
import { REPO, loadAverage } from './lib/procs.mjs';
import { median, round } from './lib/stats.mjs';
import { runTreesInTurn, treesOf } from './lib/trees.mjs';

const a = args(process.argv.slice(2));
const runs = Number(a.runs ?? 10);
const modelDir = path.resolve(REPO, a.model ?? 'models/facade-ads-full/2');

if (a.tree) {
  // One tree's measurement (a child of the run below).
  const inf = await import(pathToFileURL(path.join(a.tree, 'services', 'inference', 'dist', 'index.js')).href);
  const manifest = JSON.parse(readFileSync(path.join(modelDir, 'model.json'), 'utf8'));
  const { width, height } = manifest.input;
  const config = inf.parseConfig({ SEGSERVE_MODEL_DIR: modelDir }, { cpuLimit: os.availableParallelism(), tmpDir: os.tmpdir() });
  const pool = await inf.OrtWorkerPool.create({
    onnx: readFileSync(path.join(modelDir, 'model.onnx')),
    io: { inputName: manifest.input.name, dims: [1, 3, height, width], outputName: manifest.output.name },
    workers: 1,
    settings: config.ort,
    segment: inf.segmentSpec(manifest),
  });
  const codec = new inf.SharpCodec({ maxInputPixels: config.maxInputPixels });
  const rgbs = [];
  for (const i of loadImages().slice(0, 8)) rgbs.push(await codec.decodeResized(i.bytes, width, height));
  await pool.warmUp();
  const out = { preprocess: [], infer: [], postprocess: [], handover: [] };
  for (let r = 0; r < runs; r++) {
    const t0 = performance.now();
    const o = await pool.segment(rgbs[r % rgbs.length]);
    const wall = performance.now() - t0;
    for (const k of ['preprocess', 'infer', 'postprocess']) out[k].push(o.ms[k]);
    out.handover.push(wall - o.ms.preprocess - o.ms.infer - o.ms.postprocess);
  }
  await pool.close();
  console.log(JSON.stringify(Object.fromEntries(Object.entries(out).map(([k, v]) => [k, round(median(v), 2)]))));
} else {
  const trees = treesOf(a.before);
  console.log(`handover: ${path.relative(REPO, modelDir)}, ${runs} Segment calls per process, load ${loadAverage().join(' ')}`);
  await runTreesInTurn(trees, a.before ? 2 : 1, (_tree, dir) => [new URL(import.meta.url).pathname, ['--tree', dir, '--runs', String(runs), '--model', modelDir]], {
    onLine: (tree, line) => console.log(`  ${tree.padEnd(6)} median ms: ${line.trim()}`),
  });
  console.log(`load ${loadAverage().join(' ')}`);
}
