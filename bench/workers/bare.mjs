// Variant (1): bare onnxruntime `session.run` — the limit on this hardware. A child process of
// bench/run.mjs (IPC): `workers` worker threads, one session each, with exactly the service's
// onnxruntime settings (parsed by the service's own parseConfig from the same environment:
// threads, memory pattern, spinning, and the arena chosen by the service's own settleArena from
// the warm-up run's measured growth),
// running one prepared input tensor back to back. No decode, no copy per request.
import os from 'node:os';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { readFileSync } from 'node:fs';
import { arenaPolicy, measureWarmUp, parseConfig, processMemory, settleArena } from '@segserve/inference';
import { closedLoop } from '../lib/load.mjs';

const THREAD = `
const { parentPort, workerData } = require('node:worker_threads');
const ort = require(${JSON.stringify(path.join(path.dirname(new URL(import.meta.url).pathname), '..', '..', 'node_modules', 'onnxruntime-node'))});
(async () => {
  const { onnx, ort: o, input, dims, output } = workerData;
  const session = await ort.InferenceSession.create(onnx, {
    executionProviders: ['cpu'], intraOpNumThreads: o.intraOpThreads, interOpNumThreads: o.interOpThreads,
    enableCpuMemArena: o.arena, enableMemPattern: o.memPattern, executionMode: 'sequential',
    graphOptimizationLevel: 'all', logSeverityLevel: 3,
    extra: { session: { intra_op: { allow_spinning: o.spinning ? '1' : '0' } } },
  });
  // An image-like input (values of a normalised photo), built once.
  const x = new Float32Array(dims.reduce((a, b) => a * b, 1));
  for (let i = 0; i < x.length; i++) x[i] = Math.sin(i * 0.001) * 2;
  const feeds = { [input]: new ort.Tensor('float32', x, dims) };
  parentPort.postMessage({ type: 'created' });
  let warm = false;
  parentPort.on('message', async () => {
    const t0 = performance.now();
    await session.run(feeds, [output]);
    // The first message is the warm-up run (measured by the parent).
    parentPort.postMessage(warm ? { type: 'done', ms: performance.now() - t0 } : { type: 'ready' });
    warm = true;
  });
})();
`;

const modelDir = process.argv[2];
const config = parseConfig({ ...process.env, SEGSERVE_MODEL_DIR: modelDir }, { cpuLimit: os.availableParallelism(), tmpDir: os.tmpdir() });
const manifest = JSON.parse(readFileSync(path.join(modelDir, 'model.json'), 'utf8'));
const onnx = readFileSync(path.join(modelDir, 'model.onnx'));
const nextMessage = (w) => new Promise((resolve, reject) => {
  w.once('message', resolve);
  w.once('error', reject);
});

/** The service's onnxruntime sessions (runs at once) with its threads each, warmed by one run each. */
async function startSessions(arena) {
  const threads = Array.from({ length: config.ort.sessions }, () => new Worker(THREAD, {
    eval: true,
    workerData: { onnx, ort: { ...config.ort, arena }, input: manifest.input.name, output: manifest.output.name, dims: [1, 3, manifest.input.height, manifest.input.width] },
  }));
  await Promise.all(threads.map(nextMessage));
  const { growthBytes } = await measureWarmUp(processMemory, () => Promise.all(threads.map((w) => {
    const p = nextMessage(w);
    w.postMessage('run');
    return p;
  })));
  return { threads, growthBytes };
}

const t0 = performance.now();
// The arena decided from the first warm-up run, as the service's model loader decides it.
const { started, decision: arena, growthBytes } = await settleArena(arenaPolicy(config), startSessions, (stale) => Promise.all(stale.threads.map((w) => w.terminate())));
const { threads } = started;
const loadSeconds = (performance.now() - t0) / 1000;

// FIFO dispatch onto free sessions, like the service's worker pool.
const idle = [...threads];
const waiting = [];
function run() {
  const t = performance.now(); // latency includes the wait for a free session, as in the service
  return new Promise((resolve) => {
    const go = (w) => {
      w.once('message', () => {
        resolve({ code: 'OK', ms: performance.now() - t });
        const next = waiting.shift();
        if (next) next(w);
        else idle.push(w);
      });
      w.postMessage('run');
    };
    const w = idle.shift();
    if (w) go(w);
    else waiting.push(go);
  });
}

process.on('message', async (msg) => {
  if (msg.type === 'cell') {
    const summary = await closedLoop({ concurrency: msg.concurrency, requests: msg.requests, send: () => run() });
    process.send({ type: 'result', summary });
  } else if (msg.type === 'exit') {
    await Promise.all(threads.map((w) => w.terminate()));
    process.exit(0);
  }
});
process.send({ type: 'ready', load_seconds: loadSeconds, settings: { workers: config.ort.sessions, ...config.ort, arena_mode: config.ort.arena, arena: arena.arena, arena_reason: arena.reason, warm_up_growth_mb: growthBytes === undefined ? null : Math.round(growthBytes / 2 ** 20) } });
