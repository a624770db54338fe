// The study's measurement protocol for a set of model versions, through the product's own
// inference code (@segserve/inference: DirectoryModelStore → SharpCodec → the serving onnxruntime
// backend with the serving settings from parseConfig, the Pipeline) and the one golden-set module
// (@segserve/runtime): when the serving pipeline changes, re-running this re-measures every row
// the same way.
//
//   node experiments/measure_models.mjs --golden <dir> [--rounds 3] [--first-round 0] [--runs 8] [--images 12] [--score 1] --out <file.json> <model dir>...
//
// Per round (the models in alternating order, so that a busy moment of the shared machine does not
// land on one model only):
// - model-only time: `runs` Segment runs of the backend on a decoded golden image, each timed where
//   it ran (the onnxruntime session.run inside the worker, `ms.infer`) — the model as served, with
//   the serving thread/arena/pattern settings; `backend_ms` is the whole backend call (tensor
//   building, the run, the argmax to a class map, the hop to the worker and back);
// - end-to-end time: `images` golden images through Pipeline.inspect + segment(PNG): decode,
//   resize, tensor, run, argmax, PNG at the image's size — what one request costs in the service.
// --first-round k numbers the rounds from k (the order alternates with the round's number), so
// that rounds run as separate invocations (one short quiet hold each) keep the alternation.
// With --score 1 (the default), round 1 also scores every golden image: one confusion matrix per
// image (the runtime's accumulate, the scoring `segserve eval` uses), from which the Python side
// draws the bootstrap interval; their sum gives the mIoU, which must equal `segserve eval`'s on
// the same model. --score 0 only times (the 1152×768 copies: their accuracy is not what is served).
//
// Writes {settings, rounds: [{loadavg}], models: {dir: {model_ms, backend_ms, e2e_ms, per_image, miou}}}.
import { readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import { DirectoryModelStore, SharpCodec, StageTimer, applyFlags, defaultBackendFactory, imageLimits, loadPipeline, parseConfig } from '@segserve/inference';
import { accumulate, decodePngMask, emptyConfusion, listGoldenSet, readMask, scores } from '@segserve/runtime';

function parseArgs(argv) {
  const out = { rounds: 3, 'first-round': 0, runs: 8, images: 12, score: '1', models: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a.startsWith('--')) out[a.slice(2)] = argv[++i];
    else out.models.push(a);
  }
  if (!out.golden || !out.out || out.models.length === 0) {
    throw new Error('usage: measure_models.mjs --golden <dir> --out <file.json> [--rounds n] [--runs n] [--images n] <model dir>...');
  }
  return out;
}

async function load(dir) {
  const config = parseConfig(applyFlags(process.env, ['--model', dir]), { cpuLimit: os.availableParallelism(), tmpDir: os.tmpdir() });
  const codec = new SharpCodec({ maxInputPixels: config.maxInputPixels });
  const store = new DirectoryModelStore({ dir });
  const loaded = await loadPipeline({ store, codec, limits: imageLimits(config), createBackend: defaultBackendFactory({ ...config, ort: { ...config.ort, sessions: 1 } }) });
  return { dir, config, codec, store, ...loaded };
}

async function main() {
  const a = parseArgs(process.argv.slice(2));
  const items = await listGoldenSet(a.golden);
  const bytes = await Promise.all(items.map((it) => readFile(it.imagePath)));
  const truths = await Promise.all(items.map((it) => readMask(it.maskPath)));
  const models = [];
  for (const dir of a.models) models.push(await load(dir));
  const res = Object.fromEntries(models.map((m) => [m.dir, { model_ms: [], backend_ms: [], e2e_ms: [], per_image: [], miou: null }]));
  // The model-only input: the first golden image decoded and resized the way the pipeline does it.
  const inputs = new Map();
  for (const m of models) {
    const [, , h, w] = m.model.input.shape;
    inputs.set(m.dir, await m.codec.decodeResized(bytes[0], w, h));
  }
  const rounds = [];
  const first = Number(a['first-round']);
  for (let r = first; r < first + Number(a.rounds); r++) {
    rounds.push({ loadavg_before: os.loadavg()[0] });
    const order = r % 2 === 0 ? models : [...models].reverse();
    for (const m of order) {
      const out = res[m.dir];
      for (let i = 0; i < Number(a.runs); i++) {
        const t0 = performance.now();
        const seg = await m.backend.segment(inputs.get(m.dir).slice()); // the backend takes its input over
        out.backend_ms.push(performance.now() - t0);
        out.model_ms.push(seg.ms.infer);
      }
      const score = r === 0 && a.score !== '0';
      const n = score ? items.length : Math.min(items.length, Number(a.images));
      for (let i = 0; i < n; i++) {
        const timer = new StageTimer();
        const seg = await m.pipeline.segment(bytes[i], m.pipeline.inspect(bytes[i]), 'PNG', timer);
        const total = timer.finish().total ?? 0;
        if (i < Number(a.images)) out.e2e_ms.push(total);
        if (score) {
          const predicted = decodePngMask(seg.mask, `${items[i].imagePath} (predicted mask)`);
          const c = emptyConfusion(m.model.manifest.classes.length);
          const invalid = accumulate(c, predicted.pixels, truths[i].pixels);
          if (invalid > 0) throw new Error(`${items[i].maskPath}: ${invalid} pixels are not a class`);
          out.per_image.push({ name: items[i].name, confusion: Array.from(c.counts) });
        }
      }
    }
    rounds[r - first].loadavg_after = os.loadavg()[0];
  }
  for (const m of models) {
    const total = emptyConfusion(m.model.manifest.classes.length);
    for (const p of res[m.dir].per_image) p.confusion.forEach((v, i) => { total.counts[i] += v; });
    if (res[m.dir].per_image.length > 0) res[m.dir].miou = scores(total).miou;
    await m.backend.close();
    await m.store.close();
  }
  const s = models[0].config.ort;
  await writeFile(a.out, `${JSON.stringify({
    settings: { intra_op_threads: s.intraOpThreads, sessions: 1, arena: s.arena, mem_pattern: s.memPattern, cpus: os.availableParallelism() },
    golden: { dir: a.golden, images: items.length },
    rounds,
    models: res,
  })}\n`);
}

main().catch((err) => {
  console.error(err instanceof Error ? err.stack : err);
  process.exit(1);
});
