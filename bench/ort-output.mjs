// What a model run leaves resident in a thread that allocates little JavaScript (the onnxruntime
// worker's case; docs/benchmarks.md "Issue 15, session 9"): onnxruntime-node returns each run's
// output as a copy in a new buffer, freed only when V8 collects it. A fresh process per mode (the
// malloc settings of inference processes, INFERENCE_MALLOC_ENV; the service's session settings:
// intra-op threads = CPUs, arena off, memory pattern on), `--runs` runs back to back of an
// image-like input; per run: RSS before it, its peak growth above that (VmHWM reset through
// /proc/self/clear_refs), its time, and the time of the collection after it. Modes, interleaved
// over `--repeats`:
//   plain     session.run(feeds, [output]) as the worker did before session 9
//   collect   the same, then a young-generation collection (collectYoungGarbage)
//   prealloc  the output pre-allocated (session.run(feeds, {output: tensor})), no collection
//   prealloc+collect
//   extended  plain with graphOptimizationLevel 'extended' (no NCHWc layout)
//
//   node bench/ort-output.mjs [--model models/facade-ads-full/2] [--runs 8] [--repeats 1]
//        [--modes plain,collect,prealloc,prealloc+collect,extended]
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { INFERENCE_MALLOC_ENV } from '@segserve/runtime';
import { REPO, loadAverage } from './lib/procs.mjs';

const MODES = ['plain', 'collect', 'prealloc', 'prealloc+collect', 'extended'];

function status() {
  const s = readFileSync('/proc/self/status', 'utf8');
  const mib = (k) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(s)?.[1]) / 1024;
  return { rss: mib('VmRSS'), hwm: mib('VmHWM') };
}

/** One mode in this process: the per-run readings. */
async function child(modelDir, mode, runs) {
  const { default: ort } = await import('onnxruntime-node');
  const { collectYoungGarbage } = await import('@segserve/runtime/gc');
  const manifest = JSON.parse(readFileSync(path.join(modelDir, 'model.json'), 'utf8'));
  const dims = [1, 3, manifest.input.height, manifest.input.width];
  const session = await ort.InferenceSession.create(readFileSync(path.join(modelDir, 'model.onnx')), {
    executionProviders: ['cpu'],
    intraOpNumThreads: os.availableParallelism(),
    enableCpuMemArena: false,
    enableMemPattern: true,
    executionMode: 'sequential',
    graphOptimizationLevel: mode === 'extended' ? 'extended' : 'all',
    logSeverityLevel: 3,
  });
  const x = new Float32Array(dims.reduce((a, b) => a * b, 1));
  for (let i = 0; i < x.length; i++) x[i] = Math.sin(i * 0.001) * 2;
  const name = manifest.output.name;
  const prealloc = mode.startsWith('prealloc');
  const collect = mode.endsWith('collect');
  const classes = session.outputMetadata.find((m) => m.name === name)?.shape?.[1];
  const outDims = [1, typeof classes === 'number' ? classes : manifest.classes.length, manifest.input.height, manifest.input.width];
  const out = prealloc ? new ort.Tensor('float32', new Float32Array(outDims.reduce((a, b) => a * b, 1)), outDims) : undefined;
  const readings = [];
  for (let i = 0; i < runs; i++) {
    const before = status();
    writeFileSync('/proc/self/clear_refs', '5');
    const t0 = performance.now();
    const feeds = { [manifest.input.name]: new ort.Tensor('float32', x, dims) };
    const r = out ? await session.run(feeds, { [name]: out }) : await session.run(feeds, [name]);
    const runMs = performance.now() - t0;
    const after = status();
    r[name]?.dispose();
    const gcMs = collect ? collectYoungGarbage() : 0;
    readings.push({ rss_before_mib: Math.round(before.rss), growth_mib: Math.round(after.hwm - before.rss), run_ms: Math.round(runMs), collect_ms: Math.round(gcMs * 100) / 100 });
  }
  return readings;
}

const arg = (name, d) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : d;
};

if (import.meta.url === `file://${process.argv[1]}`) {
  const modelDir = path.resolve(REPO, arg('model', 'models/facade-ads-full/2'));
  const runs = Number(arg('runs', '8'));
  if (process.argv.includes('--child')) {
    process.stdout.write(`${JSON.stringify(await child(modelDir, arg('mode', 'plain'), runs))}\n`);
  } else {
    const modes = arg('modes', MODES.join(',')).split(',');
    for (const m of modes) if (!MODES.includes(m)) throw new Error(`--modes: unknown '${m}' (${MODES.join(', ')})`);
    const repeats = Number(arg('repeats', '1'));
    const rows = [];
    for (let r = 0; r < repeats; r++) {
      for (const mode of r % 2 === 0 ? modes : [...modes].reverse()) {
        const load = loadAverage()[0];
        const p = spawnSync(process.execPath, [process.argv[1], '--child', '--mode', mode, '--model', modelDir, '--runs', String(runs)], { env: { ...process.env, ...INFERENCE_MALLOC_ENV }, encoding: 'utf8' });
        if (p.status !== 0) throw new Error(`${mode}: exit ${p.status}: ${p.stderr}`);
        const readings = JSON.parse(p.stdout.trim().split('\n').at(-1));
        rows.push({ mode, repeat: r, load, readings });
        const col = (k) => readings.map((x) => x[k]).join(', ');
        console.error(`  ${mode} (load ${load}): RSS before each run ${col('rss_before_mib')} MiB; growth ${col('growth_mib')} MiB; run ${col('run_ms')} ms; collection ${col('collect_ms')} ms`);
      }
    }
    console.log(JSON.stringify({ model_dir: path.relative(REPO, modelDir), runs, rows }, null, 2));
  }
}
