// Throughput of the inference service versus bare onnxruntime session.run for the same model
// and thread settings, and peak RSS of a service process answering 10 concurrent uploads.
// A measuring tool, not a test (no asserts); run it on a quiet machine:
//
//   npx tsc -b
//   node services/inference/bench/compare.mjs --model models/facade-ads/2 \
//        [--images models/facade-ads/golden/images] [--concurrency 2] [--intra 1] [--requests 40]
//        [--arena false] [--mem-pattern false] [--only bare,service,rss]
//
// The service inherits this process's environment: set MALLOC_ARENA_MAX=2 (as the container
// image does, docs/architecture.md#memory-and-admission-by-cost) to measure what a pod sees.
//
// bare:    `concurrency` worker threads, one session each (intra-op threads `intra`, inter-op 1,
//          arena/memory pattern as given), back-to-back runs on one prepared tensor.
// service: `segserve inference` with the same settings; a grpc-js client keeps
//          2 × concurrency JPEG uploads outstanding (decode, resize, normalise, run, argmax,
//          nearest resize, PNG encode, gRPC both ways).
// rss:     a fresh service process, 10 uploads at once; VmHWM of the process afterwards.
// Reported: images/s (wall) and CPU ms per image (bare: this process's worker threads; service:
// the server process, client excluded) — on a shared machine compare the CPU figures.
import { readFileSync, readdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import * as grpc from '@grpc/grpc-js';
import { loadProtos } from '@segserve/proto';
import { supervise } from '@segserve/runtime';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

function parseArgs(argv) {
  const a = { concurrency: 2, intra: 1, requests: 40, arena: 'false', 'mem-pattern': 'false', images: 'models/facade-ads/golden/images', only: 'bare,service,rss' };
  for (let i = 0; i < argv.length; i += 2) a[argv[i].replace(/^--/, '')] = argv[i + 1];
  if (!a.model) throw new Error('usage: compare.mjs --model <dir> [--images dir] [--concurrency n] [--intra n] [--requests n]');
  return { ...a, concurrency: Number(a.concurrency), intra: Number(a.intra), requests: Number(a.requests), arena: a.arena === 'true', memPattern: a['mem-pattern'] === 'true', only: new Set(a.only.split(',')) };
}

const BARE_WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const ort = require(${JSON.stringify(path.join(REPO, 'node_modules/onnxruntime-node'))});
(async () => {
  const { model, manifest, intra, arena, memPattern, runs } = workerData;
  const s = await ort.InferenceSession.create(model, { intraOpNumThreads: intra, interOpNumThreads: 1, enableCpuMemArena: arena, enableMemPattern: memPattern, executionMode: 'sequential', graphOptimizationLevel: 'all' });
  const dims = [1, 3, manifest.input.height, manifest.input.width];
  const x = new Float32Array(dims.reduce((a, b) => a * b, 1)).map((_, i) => Math.sin(i));
  await s.run({ [manifest.input.name]: new ort.Tensor('float32', x, dims) });
  parentPort.postMessage('warm');
  await new Promise((r) => parentPort.once('message', r));
  const times = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    await s.run({ [manifest.input.name]: new ort.Tensor('float32', x, dims) });
    times.push(performance.now() - t0);
  }
  parentPort.postMessage(times);
})();
`;

async function bare(a, manifest) {
  const runs = Math.ceil(a.requests / a.concurrency);
  const workers = Array.from({ length: a.concurrency }, () => new Worker(BARE_WORKER, { eval: true, workerData: { model: path.join(a.model, 'model.onnx'), manifest, intra: a.intra, arena: a.arena, memPattern: a.memPattern, runs } }));
  await Promise.all(workers.map((w) => new Promise((r) => w.once('message', r))));
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const times = await Promise.all(workers.map((w) => new Promise((r) => { w.once('message', r); w.postMessage('go'); })));
  const wall = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  await Promise.all(workers.map((w) => w.terminate()));
  const all = times.flat();
  return { images_per_s: all.length / wall, cpu_ms_per_image: (cpu.user + cpu.system) / 1000 / all.length, run_ms_p50: pct(all, 50), runs: all.length };
}

function pct(values, p) {
  const s = [...values].sort((x, y) => x - y);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
}

async function startService(a, extraEnv = {}) {
  const env = { ...process.env, SEGSERVE_HOST: '127.0.0.1', SEGSERVE_MAX_CONCURRENCY: String(a.concurrency), SEGSERVE_INTRA_OP_THREADS: String(a.intra), SEGSERVE_ORT_ARENA: String(a.arena), SEGSERVE_ORT_MEM_PATTERN: String(a.memPattern), SEGSERVE_MAX_QUEUE: '64', SEGSERVE_QUEUE_TIMEOUT_MS: '600000', ...extraEnv };
  for (const k of Object.keys(env)) if (k.startsWith('SEGSERVE_') && !(k in extraEnv) && !['SEGSERVE_HOST', 'SEGSERVE_MAX_CONCURRENCY', 'SEGSERVE_INTRA_OP_THREADS', 'SEGSERVE_ORT_ARENA', 'SEGSERVE_ORT_MEM_PATTERN', 'SEGSERVE_MAX_QUEUE', 'SEGSERVE_QUEUE_TIMEOUT_MS'].includes(k)) delete env[k];
  const proc = supervise({ command: process.execPath, args: [path.join(REPO, 'packages/cli/dist/bin.js'), 'inference', '--model', a.model, '--grpc-port', '0', '--metrics-port', '0'], env, name: 'inference', keepLines: 200 });
  // A model that cannot load is retried forever: give up on the first failure instead.
  const failed = proc.waitForLine((l) => l.includes('"msg":"model load failed"'), 600_000).then((line) => Promise.reject(new Error(line)));
  failed.catch(() => undefined);
  const serving = await Promise.race([proc.waitForStartup('inference', 600_000), failed]);
  return { proc, port: serving.grpc_port };
}

/** CPU time (user + system) of a process so far, ms; /proc/<pid>/stat counts clock ticks. */
function cpuMs(pid) {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
}

function statusKb(pid, field) {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : NaN;
}

function segmentOnce(client, image) {
  return new Promise((resolve, reject) => client.Segment({ image, mask_format: 'PNG' }, { deadline: Date.now() + 600_000 }, (err, res) => (err ? reject(err) : resolve(res))));
}

async function service(a, images) {
  const { proc, port } = await startService(a);
  const p = loadProtos();
  const client = new p.segmenter.segserve.v1.Segmenter(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), { 'grpc.max_receive_message_length': 64 << 20, 'grpc.max_send_message_length': 64 << 20 });
  try {
    for (const img of images.slice(0, a.concurrency)) await segmentOnce(client, img); // warm the decoders
    let next = 0;
    const stages = {};
    const cpu0 = cpuMs(proc.pid);
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: 2 * a.concurrency }, async () => {
        while (next < a.requests) {
          const i = next++;
          const res = await segmentOnce(client, images[i % images.length]);
          for (const [k, v] of Object.entries(res.timings)) (stages[k] ??= []).push(v);
        }
      }),
    );
    const wall = (performance.now() - t0) / 1000;
    const cpu = cpuMs(proc.pid) - cpu0;
    const stageMs = Object.fromEntries(Object.entries(stages).map(([k, v]) => [k, Math.round((v.reduce((x, y) => x + y, 0) / v.length) * 10) / 10]));
    return { images_per_s: a.requests / wall, cpu_ms_per_image: cpu / a.requests, stage_ms_mean: stageMs, vmhwm_mb: statusKb(proc.pid, 'VmHWM') / 1024 };
  } finally {
    client.close();
    await proc.stop();
  }
}

async function rssTen(a, images) {
  const { proc, port } = await startService(a);
  const p = loadProtos();
  const client = new p.segmenter.segserve.v1.Segmenter(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), { 'grpc.max_receive_message_length': 64 << 20, 'grpc.max_send_message_length': 64 << 20 });
  try {
    const ready = statusKb(proc.pid, 'VmRSS') / 1024;
    let sampled = 0;
    const sampler = setInterval(() => (sampled = Math.max(sampled, statusKb(proc.pid, 'VmRSS') / 1024)), 20);
    const t0 = performance.now();
    const results = await Promise.allSettled(Array.from({ length: 10 }, (_, i) => segmentOnce(client, images[i % images.length])));
    const wall = performance.now() - t0;
    clearInterval(sampler);
    return { ok: results.filter((r) => r.status === 'fulfilled').length, rss_ready_mb: ready, rss_sampled_peak_mb: sampled, vmhwm_mb: statusKb(proc.pid, 'VmHWM') / 1024, wall_ms: Math.round(wall) };
  } finally {
    client.close();
    await proc.stop();
  }
}

const a = parseArgs(process.argv.slice(2));
const manifest = JSON.parse(readFileSync(path.join(a.model, 'model.json'), 'utf8'));
const dir = path.resolve(a.images);
const images = readdirSync(dir).filter((f) => /\.(jpe?g|png|webp)$/i.test(f)).sort().map((f) => readFileSync(path.join(dir, f)));
const load = os.loadavg()[0];
const b = a.only.has('bare') ? await bare(a, manifest) : undefined;
const s = a.only.has('service') ? await service(a, images) : undefined;
const r = a.only.has('rss') ? await rssTen(a, images) : undefined;
const round = (o) => JSON.parse(JSON.stringify(o, (_k, v) => (typeof v === 'number' ? Math.round(v * 100) / 100 : v)));
console.log(JSON.stringify(round({
  model: `${manifest.name}/${manifest.version} ${manifest.input.width}x${manifest.input.height}`,
  settings: { concurrency: a.concurrency, intra_op_threads: a.intra, arena: a.arena, mem_pattern: a.memPattern, requests: a.requests },
  cpus: os.availableParallelism(),
  loadavg_1m_at_start: load,
  bare: b,
  service: s,
  service_vs_bare: s && b ? s.images_per_s / b.images_per_s : undefined,
  // CPU time per image is robust to other load on a shared machine; wall throughput is not.
  service_vs_bare_cpu: s && b ? b.cpu_ms_per_image / s.cpu_ms_per_image : undefined,
  malloc: { MALLOC_ARENA_MAX: process.env.MALLOC_ARENA_MAX, MALLOC_MMAP_THRESHOLD_: process.env.MALLOC_MMAP_THRESHOLD_ },
  ten_concurrent: r,
})));
