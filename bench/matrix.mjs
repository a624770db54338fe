// The variant matrix of issue 8: (1) bare session.run, (2) the in-process pipeline, (3) inference
// over gRPC direct, (4) the gateway over REST multipart and over gRPC — each at several
// concurrencies, repeated, with the variants interleaved (the order rotates every repeat and
// concurrency) so that a noisy neighbour hurts every variant alike. Every cell records latency
// percentiles, throughput, errors by code, peak RSS of each process involved (VmHWM reset at the
// start of the cell, and VmRSS sampled) and the CPU seconds each server process spent.
import { fork } from 'node:child_process';
import path from 'node:path';
import { readFileSync } from 'node:fs';
import { closedLoop } from './lib/load.mjs';
import { segmenterClient, segment, multipartBody, postRaw, httpAgent } from './lib/clients.mjs';
import { MemoryWatch, REPO, baseEnv, cpuSeconds, loadAverage, startGateway, startInference } from './lib/procs.mjs';

export const VARIANTS = ['bare', 'pipeline', 'grpc', 'rest', 'gateway-grpc'];

function forkWorker(file, args, env) {
  const child = fork(path.join(REPO, 'bench', 'workers', file), args, { env, stdio: ['ignore', 'inherit', 'inherit', 'ipc'], execArgv: [] });
  const next = (type) =>
    new Promise((resolve, reject) => {
      const onMsg = (m) => {
        if (m.type !== type) return;
        child.off('message', onMsg);
        child.off('exit', onExit);
        resolve(m);
      };
      const onExit = (code) => reject(new Error(`${file} exited (${code})`));
      child.on('message', onMsg);
      child.once('exit', onExit);
    });
  return {
    pid: child.pid,
    ready: next('ready'),
    async cell(concurrency, requests) {
      const p = next('result');
      child.send({ type: 'cell', concurrency, requests });
      return (await p).summary;
    },
    async stop() {
      const done = new Promise((r) => child.once('exit', r));
      child.send({ type: 'exit' });
      await done;
    },
  };
}

/**
 * Starts every variant for one model; returns {variants: {name: {pids, cell(c, n)}}, stop()}.
 * `env` is the service configuration (SEGSERVE_*) shared by all variants.
 */
export async function startVariants({ modelDir, images, env = {}, only = VARIANTS }) {
  const manifest = JSON.parse(readFileSync(path.join(modelDir, 'model.json'), 'utf8'));
  const model = manifest.name;
  const wenv = baseEnv(env);
  const variants = {};
  const stops = [];
  const imageFiles = images.map((i) => i.file);
  const bytes = images.map((i) => i.bytes);
  const info = {};
  if (only.includes('bare')) {
    const w = forkWorker('bare.mjs', [modelDir], wenv);
    const r = await w.ready;
    info.bare = r;
    stops.push(() => w.stop());
    variants.bare = { pids: { bare: w.pid }, cell: (c, n) => w.cell(c, n) };
  }
  if (only.includes('pipeline')) {
    const w = forkWorker('pipeline.mjs', [modelDir, ...imageFiles], wenv);
    info.pipeline = await w.ready;
    stops.push(() => w.stop());
    variants.pipeline = { pids: { pipeline: w.pid }, cell: (c, n) => w.cell(c, n) };
  }
  // `bare@VAR=value,…` / `pipeline@VAR=value,…`: the same variant with other service settings,
  // interleaved with the rest (e.g. bare@SEGSERVE_ORT_SPINNING=true).
  for (const name of only) {
    const m = /^(bare|pipeline)@(.+)$/.exec(name);
    if (!m) continue;
    const extra = Object.fromEntries(m[2].split(',').map((kv) => kv.split('=')));
    const w = m[1] === 'bare' ? forkWorker('bare.mjs', [modelDir], baseEnv({ ...env, ...extra })) : forkWorker('pipeline.mjs', [modelDir, ...imageFiles], baseEnv({ ...env, ...extra }));
    info[name] = await w.ready;
    stops.push(() => w.stop());
    variants[name] = { pids: { [m[1]]: w.pid }, cell: (c, n) => w.cell(c, n) };
  }
  const needInference = only.some((v) => ['grpc', 'rest', 'gateway-grpc'].includes(v));
  if (needInference) {
    const inf = await startInference(modelDir, env);
    stops.push(() => inf.stop());
    info.inference = { cold_start_s: (inf.readyAt - inf.spawnedAt) / 1000, load_seconds: inf.line.load_seconds, settings: { workers: inf.line.max_concurrency, intra: inf.line.intra_op_threads, max_queue: inf.line.max_queue } };
    const direct = segmenterClient(`127.0.0.1:${inf.line.grpc_port}`);
    stops.push(() => direct.close());
    const request = (i) => ({ model, image: bytes[i % bytes.length], mask_format: 'PNG' });
    if (only.includes('grpc')) variants.grpc = { pids: { inference: inf.pid }, cell: (c, n) => closedLoop({ concurrency: c, requests: n, send: (i) => segment(direct, request(i)) }) };
    if (only.includes('rest') || only.includes('gateway-grpc')) {
      const gw = await startGateway(`${model}=ipv4:127.0.0.1:${inf.line.grpc_port}`);
      stops.unshift(() => gw.stop());
      info.gateway = { cold_start_s: (gw.readyAt - gw.spawnedAt) / 1000 };
      const pids = { inference: inf.pid, gateway: gw.pid };
      if (only.includes('rest')) {
        const bodies = bytes.map((b) => multipartBody(b));
        const url = `http://127.0.0.1:${gw.line.http_port}/v1/models/${model}/segment`;
        variants.rest = {
          pids,
          cell: async (c, n) => {
            const agent = httpAgent(c);
            try {
              return await closedLoop({ concurrency: c, requests: n, send: (i) => postRaw(url, bodies[i % bodies.length], { agent }) });
            } finally {
              agent.destroy();
            }
          },
        };
      }
      if (only.includes('gateway-grpc')) {
        const gwc = segmenterClient(`127.0.0.1:${gw.line.grpc_port}`);
        stops.unshift(() => gwc.close());
        variants['gateway-grpc'] = { pids, cell: (c, n) => closedLoop({ concurrency: c, requests: n, send: (i) => segment(gwc, request(i)) }) };
      }
    }
  }
  return {
    model,
    manifest,
    info,
    variants,
    async stop() {
      for (const s of stops) await s();
    },
  };
}

/** Runs one cell with memory and CPU accounting. */
export async function runCell(variant, concurrency, requests) {
  const watch = new MemoryWatch(variant.pids, 100).start();
  const cpu0 = Object.fromEntries(Object.entries(variant.pids).map(([k, pid]) => [k, cpuSeconds(pid)]));
  const load = loadAverage();
  const summary = await variant.cell(concurrency, requests);
  const mem = watch.stop();
  const cpu = Object.fromEntries(Object.entries(variant.pids).map(([k, pid]) => [k, cpuSeconds(pid) - cpu0[k]]));
  return {
    ...summary,
    loadavg: load,
    rss_mb: Object.fromEntries(Object.entries(mem).map(([k, m]) => [k, Math.round(m.peakRssMb)])),
    cpu_ms_per_image: Object.fromEntries(Object.entries(cpu).map(([k, s]) => [k, summary.ok ? Math.round((s * 1000) / summary.ok) : null])),
  };
}

/**
 * The matrix for one model: warm-up, a calibration of the cell size, then repeats × concurrencies
 * × variants in rotating order. `log` gets one line per cell.
 */
export async function runMatrix({ modelDir, images, concurrencies, repeats, variants: only, cellSeconds = 10, minRequests = 8, env = {}, log = console.log }) {
  const started = await startVariants({ modelDir, images, env, only });
  const cells = [];
  try {
    const names = only.filter((v) => started.variants[v]);
    for (const v of names) await started.variants[v].cell(2, 4); // warm-up: connections, first decodes
    // Cell size from the measured rate of the slowest variant, so a cell lasts ~cellSeconds.
    const probe = await runCell(started.variants[names[names.length - 1]], 2, 6);
    const rate = Math.max(0.2, probe.throughput);
    const sizeFor = (c) => Math.max(minRequests, 2 * Math.min(c, 20), Math.round(rate * cellSeconds * (c >= 50 ? 2 : 1)));
    log(`  ${started.model}: ~${rate.toFixed(2)} img/s through ${names[names.length - 1]}; cells of ${concurrencies.map((c) => `${sizeFor(c)}@c${c}`).join(', ')}`);
    let turn = 0;
    for (let r = 0; r < repeats; r++) {
      for (const c of concurrencies) {
        const order = names.map((_, i) => names[(i + turn) % names.length]);
        turn++;
        for (const v of order) {
          const cell = await runCell(started.variants[v], c, sizeFor(c));
          cells.push({ model: started.model, variant: v, repeat: r, ...cell });
          log(`  r${r} c${String(c).padEnd(2)} ${v.padEnd(12)} ${cell.throughput.toFixed(2).padStart(6)} img/s  p50 ${String(Math.round(cell.p50_ms)).padStart(6)} ms  p95 ${String(Math.round(cell.p95_ms)).padStart(6)}  ${JSON.stringify(cell.codes)}  rss ${JSON.stringify(cell.rss_mb)}  load ${cell.loadavg[0]}`);
        }
      }
    }
  } finally {
    await started.stop();
  }
  return { model: started.model, model_dir: path.relative(REPO, modelDir), input: `${started.manifest.input.width}x${started.manifest.input.height}`, info: started.info, cells };
}
