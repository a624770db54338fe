// Variant (2): the service's pipeline in-process (header → decode → tensor, run, argmax → PNG),
// built from @segserve/inference's own exports with the service's configuration, time split by
// stage. A child process of bench/run.mjs (IPC). Like the service, at most maxConcurrency images
// are inside the pipeline at once; the others wait holding only their bytes ('queue').
import os from 'node:os';
import { readFileSync } from 'node:fs';
import { DirectoryModelStore, SharpCodec, StageTimer, arenaPolicy, defaultBackendFactory, imageLimits, loadPipeline, parseConfig, processMemory, STAGES } from '@segserve/inference';
import { closedLoop } from '../lib/load.mjs';
import { median, round } from '../lib/stats.mjs';

const [modelDir, ...imageFiles] = process.argv.slice(2);
const images = imageFiles.map((f) => readFileSync(f));
const config = parseConfig({ ...process.env, SEGSERVE_MODEL_DIR: modelDir }, { cpuLimit: os.availableParallelism(), tmpDir: os.tmpdir() });
const codec = new SharpCodec({ maxInputPixels: config.maxInputPixels });
const loaded = await loadPipeline({ store: new DirectoryModelStore({ dir: config.model.dir, sha256: undefined }), createBackend: defaultBackendFactory(config), codec, limits: imageLimits(config), arena: arenaPolicy(config), memory: processMemory });
const { pipeline } = loaded;

let running = 0;
const waiting = [];
const acquire = () => (running < config.maxConcurrency ? (running++, Promise.resolve()) : new Promise((r) => waiting.push(r)));
const release = () => {
  const next = waiting.shift();
  if (next) next();
  else running--;
};

async function one(i, stages) {
  const t0 = performance.now();
  await acquire();
  const queueMs = performance.now() - t0;
  try {
    const image = images[i % images.length];
    const timer = new StageTimer();
    await pipeline.segment(image, pipeline.inspect(image), 'PNG', timer);
    const ms = timer.finish();
    stages.push({ ...ms, queue: queueMs });
    return { code: 'OK', ms: performance.now() - t0 };
  } catch (err) {
    return { code: err?.code ?? 'INTERNAL', ms: performance.now() - t0 };
  } finally {
    release();
  }
}

process.on('message', async (msg) => {
  if (msg.type === 'cell') {
    const stages = [];
    const summary = await closedLoop({ concurrency: msg.concurrency, requests: msg.requests, send: (i) => one(i, stages) });
    summary.stages_ms = Object.fromEntries(['queue', ...STAGES.filter((s) => s !== 'queue')].map((s) => [s, round(median(stages.map((x) => x[s] ?? Number.NaN)))]));
    process.send({ type: 'result', summary });
  } else if (msg.type === 'exit') {
    await loaded.backend.close();
    process.exit(0);
  }
});
process.send({ type: 'ready', load_seconds: loaded.loadSeconds, settings: { workers: config.ort.sessions, max_concurrency: config.maxConcurrency, ...config.ort, arena_mode: config.ort.arena, arena: loaded.arena?.arena, arena_reason: loaded.arena?.reason, warm_up_growth_mb: loaded.warmUpGrowthBytes === undefined ? null : Math.round(loaded.warmUpGrowthBytes / 2 ** 20) } });
