// Processes for the benchmarks: spawning segserve (and peers) on loopback, waiting for their
// ready line, and reading their memory from /proc (VmRSS, VmHWM — native memory included:
// onnxruntime's buffers, sharp's, V8's).
import { readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chooseDefaultModel } from '@segserve/cli';
import { parseStartupLine } from '@segserve/proto';
import { INFERENCE_MALLOC_ENV, parseJsonLine, supervise } from '@segserve/runtime';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
/** The built `segserve` command of a checkout (this one by default). */
export const segserveBin = (root = REPO) => path.join(root, 'packages', 'cli', 'dist', 'bin.js');
export const SEGSERVE_BIN = segserveBin();

/** The bundled default model's directory, as `segserve start` serves it (models/facade-ads/DEFAULT names it). */
export function defaultModelDir() {
  return chooseDefaultModel(REPO).dir;
}

/**
 * The environment a pod sees — the container image's glibc malloc settings (docs/architecture.md#memory-and-admission-by-cost,
 * INFERENCE_MALLOC_ENV), none of our SEGSERVE_* — plus `extra`; an `undefined` in `extra`
 * removes that variable (e.g. to measure glibc's own defaults).
 */
export function baseEnv(extra = {}) {
  const env = { ...process.env, ...INFERENCE_MALLOC_ENV };
  for (const k of Object.keys(env)) if (k.startsWith('SEGSERVE_')) delete env[k];
  const out = { ...env, ...extra };
  for (const [k, v] of Object.entries(out)) if (v === undefined) delete out[k];
  return out;
}

// The processes a benchmark started end with it, even when it ends abnormally (an uncaught error,
// its output piped into `head`): otherwise servers would keep running on the machine, and
// holding its cores, after the benchmark is gone. Synchronous: 'exit' runs no more I/O.
const running = new Set();
process.once('exit', () => {
  for (const s of running) s.kill('SIGKILL');
});

/**
 * Spawns `command args` on the runtime's supervisor and resolves once an output line satisfies
 * `ready(obj|undefined, line)`. Returns {proc, pid, line, spawnedAt, readyAt, output(), exited,
 * hasExited(), stop()}; rejects (after killing it) when it is not ready within `timeoutMs`.
 */
export async function launch(command, args, { env, ready, name, timeoutMs = 300_000, cwd = REPO }) {
  const spawnedAt = performance.now();
  const s = supervise({ command, args, env, cwd, name, keepLines: 400 });
  running.add(s);
  void s.exited.then(() => running.delete(s));
  let text;
  try {
    text = await s.waitForLine((l) => ready(parseJsonLine(l), l), timeoutMs, 'its ready line');
  } catch (err) {
    await s.stop(1_000);
    throw err;
  }
  return {
    name,
    proc: s.proc,
    pid: s.pid,
    spawnedAt,
    readyAt: performance.now(),
    line: parseJsonLine(text),
    output: () => s.lines().join('\n'),
    exited: s.exited,
    hasExited: () => s.hasExited(),
    stop: (graceMs = 20_000) => s.stop(graceMs),
  };
}

/**
 * `segserve inference --model dir` on loopback, any free ports; resolves on its start-up line.
 * `nodeArgs`: options for node itself (e.g. --cpu-prof, which NODE_OPTIONS does not take);
 * `root`: the checkout whose build runs (another tree for a before/after, bench/lib/trees.mjs).
 */
export function startInference(modelDir, extraEnv = {}, name = 'inference', nodeArgs = [], root = REPO) {
  return launch(process.execPath, [...nodeArgs, segserveBin(root), 'inference', '--model', modelDir], {
    name,
    env: baseEnv({ SEGSERVE_HOST: '127.0.0.1', SEGSERVE_GRPC_PORT: '0', SEGSERVE_METRICS_PORT: '0', ...extraEnv }),
    ready: (_o, line) => parseStartupLine('inference', line) !== undefined,
  });
}

/** `segserve gateway` with static upstreams (of the checkout `root`); resolves on its start-up line. */
export function startGateway(upstreams, extraEnv = {}, name = 'gateway', root = REPO) {
  return launch(process.execPath, [segserveBin(root), 'gateway'], {
    name,
    env: baseEnv({ SEGSERVE_HOST: '127.0.0.1', SEGSERVE_HTTP_PORT: '0', SEGSERVE_GRPC_PORT: '0', SEGSERVE_UPSTREAMS: upstreams, ...extraEnv }),
    ready: (_o, line) => parseStartupLine('gateway', line) !== undefined,
  });
}

/** {rssMb, hwmMb} of a live process, or undefined once it is gone. */
export function memory(pid) {
  try {
    const s = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (k) => Number(new RegExp(`^${k}:\\s+(\\d+)\\s+kB`, 'm').exec(s)?.[1] ?? Number.NaN);
    return { rssMb: kb('VmRSS') / 1024, hwmMb: kb('VmHWM') / 1024 };
  } catch {
    return undefined;
  }
}

/** Resets VmHWM to the current RSS (Linux ≥ 4.0, /proc/<pid>/clear_refs "5"); false if not allowed. */
export function resetPeak(pid) {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
}

/** CPU time (user + system) of a process so far, seconds. */
export function cpuSeconds(pid) {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (USER_HZ 100)
  } catch {
    return Number.NaN;
  }
}

/**
 * Samples VmRSS of named pids every `intervalMs`, for a window: peak of the samples and the
 * kernel's VmHWM since `start()` (reset with clear_refs where allowed).
 */
export class MemoryWatch {
  #pids;
  #timer;
  #samples = new Map();
  #t0 = 0;
  timeline = [];

  constructor(pids, intervalMs = 100) {
    this.#pids = pids; // {name: pid}
    this.intervalMs = intervalMs;
  }

  start() {
    this.#t0 = performance.now();
    for (const [name, pid] of Object.entries(this.#pids)) {
      this.resetOk = resetPeak(pid);
      this.#samples.set(name, []);
    }
    const tick = () => {
      const t = (performance.now() - this.#t0) / 1000;
      const row = { t };
      for (const [name, pid] of Object.entries(this.#pids)) {
        const m = memory(pid);
        // A process that has just died is a zombie for a moment: /proc has no VmRSS then.
        if (m && Number.isFinite(m.rssMb)) {
          this.#samples.get(name).push(m.rssMb);
          row[name] = m.rssMb;
        }
      }
      this.timeline.push(row);
    };
    tick();
    this.#timer = setInterval(tick, this.intervalMs);
    return this;
  }

  /** {name: {peakRssMb (max of samples and VmHWM), hwmMb, lastRssMb}} */
  stop() {
    clearInterval(this.#timer);
    const out = {};
    for (const [name, pid] of Object.entries(this.#pids)) {
      const m = memory(pid);
      const samples = this.#samples.get(name) ?? [];
      const sampled = samples.length ? Math.max(...samples) : Number.NaN;
      const hwm = Number.isFinite(m?.hwmMb) ? m.hwmMb : 0;
      out[name] = { peakRssMb: Math.max(sampled, hwm), hwmMb: m?.hwmMb ?? Number.NaN, sampledPeakMb: sampled, lastRssMb: m?.rssMb ?? Number.NaN };
    }
    return out;
  }
}

export function loadAverage() {
  return os.loadavg().map((v) => Math.round(v * 100) / 100);
}

/** The machine, for the report: CPU model and count, memory, kernel, Node and onnxruntime. */
export function machine() {
  let ort = '?';
  try {
    ort = JSON.parse(readFileSync(path.join(REPO, 'node_modules', 'onnxruntime-node', 'package.json'), 'utf8')).version;
  } catch {
    // reported as '?'
  }
  return {
    cpu: os.cpus()[0]?.model ?? '?',
    cpus: os.cpus().length,
    memory_gb: Math.round(os.totalmem() / 2 ** 30),
    kernel: os.release(),
    node: process.version,
    onnxruntime_node: ort,
  };
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
