// onnxruntime's own profiler on the served model with the service's settings: where the time of
// one session.run goes, by operator type (docs/benchmarks.md, "What was tried").
//
//   node bench/profile-ort.mjs [--model models/facade-ads-full/2] [--runs 5] [--intra 1] [--mem-pattern 0] [--top 6]
//
// --mem-pattern 1: onnxruntime's memory pattern on, as the service runs (arena off either way);
// --top N: the N slowest nodes, per run. The process's malloc environment is the caller's: prefix
// the service's (packages/runtime INFERENCE_MALLOC_ENV) with `env` to profile as served.
import { readFileSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import ort from 'onnxruntime-node';
import { REPO } from './lib/procs.mjs';
import { round } from './lib/stats.mjs';

const arg = (name, d) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : d;
};
const modelDir = path.resolve(REPO, arg('model', 'models/facade-ads-full/2'));
const runs = Number(arg('runs', '5'));
const intra = Number(arg('intra', '1'));
const memPattern = arg('mem-pattern', '0') === '1';
const topN = Number(arg('top', '6'));
const manifest = JSON.parse(readFileSync(path.join(modelDir, 'model.json'), 'utf8'));
const prefix = path.join(os.tmpdir(), `segserve-ort-profile-${process.pid}`);
const session = await ort.InferenceSession.create(path.join(modelDir, 'model.onnx'), {
  executionProviders: ['cpu'], intraOpNumThreads: intra, interOpNumThreads: 1, enableCpuMemArena: false, enableMemPattern: memPattern,
  executionMode: 'sequential', graphOptimizationLevel: 'all', enableProfiling: true, profileFilePrefix: prefix, logSeverityLevel: 3,
});
const dims = [1, 3, manifest.input.height, manifest.input.width];
const x = new Float32Array(dims.reduce((a, b) => a * b, 1)).map((_, i) => Math.sin(i * 0.001) * 2);
const feeds = { [manifest.input.name]: new ort.Tensor('float32', x, dims) };
await session.run(feeds);
const wall = [];
for (let i = 0; i < runs; i++) {
  const t = performance.now();
  await session.run(feeds);
  wall.push(performance.now() - t);
}
session.endProfiling(); // writes <prefix>_<timestamp>.json (onnxruntime-node returns nothing)
await session.release();
const file = readdirSync(path.dirname(prefix)).map((f) => path.join(path.dirname(prefix), f)).find((f) => f.startsWith(prefix) && f.endsWith('.json'));
if (!file) throw new Error(`no onnxruntime profile written under ${prefix}*`);
const events = JSON.parse(readFileSync(file, 'utf8'));
rmSync(file, { force: true });
// Node events: "<node>_kernel_time" with args.op_name; skip the first (warm-up) run's share.
const kernels = events.filter((e) => e.cat === 'Node' && e.name.endsWith('_kernel_time'));
const perRun = kernels.length / (runs + 1);
const measured = kernels.slice(Math.round(perRun));
const byOp = {};
for (const e of measured) {
  const op = e.args?.op_name ?? '?';
  byOp[op] = (byOp[op] ?? 0) + e.dur / 1000;
}
const total = Object.values(byOp).reduce((a, b) => a + b, 0);
const byNode = new Map();
for (const e of measured) {
  const node = e.name.replace(/_kernel_time$/, '');
  const n = byNode.get(node) ?? byNode.set(node, { node, op: e.args?.op_name, ms: 0, output: JSON.stringify(e.args?.output_type_shape ?? []) }).get(node);
  n.ms += e.dur / 1000 / runs;
}
const top = [...byNode.values()].sort((a, b) => b.ms - a.ms).slice(0, topN).map((n) => ({ ...n, ms: round(n.ms, 1) }));
console.log(JSON.stringify({
  model_dir: path.relative(REPO, modelDir),
  intra_op_threads: intra,
  mem_pattern: memPattern,
  runs,
  wall_ms_per_run: round(wall.reduce((a, b) => a + b, 0) / runs),
  kernel_ms_per_run: round(total / runs),
  by_op_ms_per_run: Object.fromEntries(Object.entries(byOp).sort((a, b) => b[1] - a[1]).map(([k, v]) => [k, { ms: round(v / runs, 1), share: round(v / total, 3) }])),
  slowest_nodes: top,
  loadavg: os.loadavg().map((v) => round(v, 2)),
}, null, 2));
