// The memory scenario of docs/architecture.md#memory-and-admission-by-cost / issue 8: a fresh inference process with the service's
// defaults under N concurrent full-size uploads. Targets: N = 10 → peak RSS ≤ 300 MB; N = 50 →
// no OOM, the excess answered OVERLOADED within 50 ms, RSS ≤ 400 MB. Peak RSS = VmHWM of the
// process since it started (loading and warm-up included) and VmRSS sampled every 50 ms.
//
//   node bench/memory.mjs [--model models/facade-ads-full/2] [--concurrency 10,50] [--seconds 30]
//   node bench/memory.mjs --sweep [--model …] [--seconds 20] [--repeats 1] [--configs 0,3]   peak at c=10 per setting
//   (--configs: the rows of SWEEP_CONFIGS to run, by index; all by default)
//   --smaps: where the peak comes from — VmRSS every 10 ms and, at each new peak, the process's
//   /proc/<pid>/smaps, reported by group (bench/lib/smaps.mjs) with the anonymous mappings of
//   1 MiB or more one by one, each with its kind (malloc, arena, wasm, other: bench/lib/smaps.mjs)
//   (the sampling is the bench's own work, beside its client's)
//   --before <checkout>: each run also with that tree's service, in turn (bench/lib/trees.mjs)
import { pickByIndex } from './lib/args.mjs';
import { closedLoop } from './lib/load.mjs';
import { segmenterClient, segment } from './lib/clients.mjs';
import { loadImages } from './lib/images.mjs';
import { MemoryWatch, REPO, loadAverage, memory, startInference } from './lib/procs.mjs';
import { readSmaps, smapsBreakdown } from './lib/smaps.mjs';
import { treesOf } from './lib/trees.mjs';
import { percentile, round } from './lib/stats.mjs';
import { existsSync, readFileSync } from 'node:fs';
import { INFERENCE_MALLOC_ENV } from '@segserve/runtime';
import path from 'node:path';

/** cgroup memory limit of this process, or undefined when unlimited / unknown. */
export function cgroupLimitMb() {
  for (const f of ['/sys/fs/cgroup/memory.max', '/sys/fs/cgroup/memory/memory.limit_in_bytes']) {
    if (!existsSync(f)) continue;
    const v = readFileSync(f, 'utf8').trim();
    if (v === 'max' || Number(v) > 2 ** 60) return undefined;
    return Number(v) / 2 ** 20;
  }
  return undefined;
}

/**
 * The process's smaps where its resident total was highest: VmRSS every `intervalMs`, and smaps
 * read again whenever VmRSS is 1 MB above the last reading's (a peak can pass while smaps is
 * read: the reading kept is the one whose own total was highest). stop() → {rss_mb (VmRSS that
 * triggered it), at_s, breakdown} or undefined.
 */
function peakSmaps(pid, intervalMs = 10) {
  const t0 = performance.now();
  let best;
  let lastRss = 0;
  const timer = setInterval(() => {
    const rssMb = memory(pid)?.rssMb;
    if (!Number.isFinite(rssMb) || rssMb < lastRss + 1) return;
    lastRss = rssMb;
    const text = readSmaps(pid);
    if (!text) return;
    const breakdown = smapsBreakdown(text);
    if (!best || breakdown.totalMb > best.breakdown.totalMb) best = { rssMb, at: (performance.now() - t0) / 1000, breakdown };
  }, intervalMs);
  return {
    stop() {
      clearInterval(timer);
      return best && { rss_mb: round(best.rssMb, 1), at_s: round(best.at, 2), breakdown: roundBreakdown(best.breakdown) };
    },
  };
}

const roundBreakdown = (b) => ({
  ...Object.fromEntries(Object.entries(b).filter(([k]) => k !== 'large').map(([k, v]) => [k, round(v, 1)])),
  large: b.large.filter((m) => m.rssMb >= 0.5).map((m) => ({ size_mb: round(m.sizeMb, 1), rss_mb: round(m.rssMb, 1), kind: m.kind, ...(m.name ? { name: m.name } : {}) })),
});

export const formatSmaps = (p) =>
  `smaps at its highest, ${p.breakdown.totalMb} MB resident (VmRSS ${p.rss_mb} MB, ${p.at_s} s into the load): file-backed ${p.breakdown.fileMb}, [heap] ${p.breakdown.heapMb}, anonymous < 1 MiB ${p.breakdown.anonSmallMb}, ≥ 1 MiB ${p.breakdown.anonLargeMb} MB (${p.breakdown.large.map((m) => `${m.rss_mb}/${m.size_mb} ${m.kind}`).join(', ')} resident/size kind)`;

export async function runMemory({ modelDir, images, concurrencies = [10, 50], seconds = 30, env = {}, log = console.log, root = REPO, smaps = false }) {
  const model = JSON.parse(readFileSync(path.join(modelDir, 'model.json'), 'utf8')).name;
  const results = [];
  for (const c of concurrencies) {
    const inf = await startInference(modelDir, env, 'inference', [], root);
    const pid = inf.pid;
    const client = segmenterClient(`127.0.0.1:${inf.line.grpc_port}`);
    const afterLoad = memory(pid);
    const watch = new MemoryWatch({ inference: pid }, 50);
    watch.start();
    const peak = smaps ? peakSmaps(pid) : undefined;
    const load = loadAverage();
    // A burst first: c uploads at the same instant, nobody retries — what is admitted, what is refused, how fast.
    const burst = await Promise.all(Array.from({ length: c }, (_, i) => segment(client, { model, image: images[i % images.length].bytes, mask_format: 'PNG' })));
    // OVERLOADED has two causes (docs/architecture.md#errors): a full queue, answered at once, and a queue wait
    // past SEGSERVE_QUEUE_TIMEOUT_MS. The target ("the excess answered OVERLOADED within 50 ms")
    // is about the first: the requests beyond running + queued capacity.
    const capacity = inf.line.max_concurrency + inf.line.max_queue;
    const timeoutMs = Number(env.SEGSERVE_QUEUE_TIMEOUT_MS ?? 10_000);
    const refusedAll = burst.filter((o) => o.code === 'OVERLOADED').map((o) => o.ms).sort((x, y) => x - y);
    const refused = refusedAll.slice(0, Math.max(0, c - capacity));
    const burstTimeouts = refusedAll.filter((ms) => ms >= timeoutMs * 0.9).length;
    // Then sustained: c clients in a closed loop for `seconds` (well-behaved: Retry-After honoured).
    const overloadedMs = [];
    const sustained = await closedLoop({
      concurrency: c,
      durationS: seconds,
      send: async (i) => {
        const o = await segment(client, { model, image: images[i % images.length].bytes, mask_format: 'PNG' });
        if (o.code === 'OVERLOADED') overloadedMs.push(o.ms);
        return o;
      },
    });
    const fast = overloadedMs.filter((ms) => ms < timeoutMs * 0.5);
    const mem = watch.stop().inference;
    const atPeak = peak?.stop();
    const final = memory(pid);
    const alive = !inf.hasExited();
    client.close();
    await inf.stop();
    const r = {
      concurrency: c,
      loadavg: load,
      rss_after_load_mb: round(afterLoad?.rssMb ?? NaN),
      peak_rss_mb: round(Math.max(final?.hwmMb ?? 0, mem.sampledPeakMb)),
      sampled_peak_rss_mb: round(mem.sampledPeakMb),
      process_survived: alive,
      capacity,
      burst: {
        ok: burst.filter((o) => o.code === 'OK').length,
        overloaded: refusedAll.length,
        excess: Math.max(0, c - capacity),
        queue_timeouts: burstTimeouts,
        other: burst.filter((o) => o.code !== 'OK' && o.code !== 'OVERLOADED').map((o) => o.code),
        // latency of the `excess` fastest OVERLOADED answers (queue full)
        overloaded_ms_p95: round(percentile(refused, 95)),
        overloaded_ms_max: round(refused.length ? Math.max(...refused) : NaN),
      },
      sustained: { ...sustained, queue_full: { count: fast.length, p50_ms: round(percentile(fast, 50)), p95_ms: round(percentile(fast, 95)), max_ms: round(fast.length ? Math.max(...fast) : NaN) }, queue_timeouts: overloadedMs.length - fast.length },
      timeline: watch.timeline.filter((_, i) => i % 4 === 0).map((p) => [round(p.t, 2), round(p.inference)]),
      ...(atPeak ? { smaps_at_peak: atPeak } : {}),
    };
    results.push(r);
    log(`  memory c=${c}: peak RSS ${r.peak_rss_mb} MB (after load ${r.rss_after_load_mb}), burst ${r.burst.ok} OK / ${r.burst.overloaded} OVERLOADED (${r.burst.excess} beyond capacity: p95 ${r.burst.overloaded_ms_p95} ms, max ${r.burst.overloaded_ms_max} ms; ${r.burst.queue_timeouts} queue timeouts), sustained ${sustained.throughput} img/s ${JSON.stringify(sustained.codes)}, queue-full OVERLOADED p95 ${r.sustained.queue_full.p95_ms} ms, ${r.sustained.queue_timeouts} queue timeouts, alive ${alive}`);
    if (atPeak) log(`    ${formatSmaps(atPeak)}`);
  }
  return { model_dir: path.relative(REPO, modelDir), cgroup_limit_mb: cgroupLimitMb() ?? null, results };
}

/**
 * What the peak at 10 concurrent uploads depends on: fresh processes with other settings of the
 * service's own variables (no code change), interleaved over `repeats`.
 */
export const SWEEP_CONFIGS = [
  { label: `defaults: 2 requests inside, 1 onnxruntime session × 2 threads, memory pattern on, arena auto (off at 1152×768, on for small models), ${Object.entries(INFERENCE_MALLOC_ENV).map(([k, v]) => `${k}=${v}`).join(' ')}`, env: {} },
  { label: 'memory pattern off (SEGSERVE_ORT_MEM_PATTERN=false)', env: { SEGSERVE_ORT_MEM_PATTERN: 'false' } },
  { label: 'arena on (SEGSERVE_ORT_ARENA=true)', env: { SEGSERVE_ORT_ARENA: 'true' } },
  { label: 'arena on, memory pattern off (SEGSERVE_ORT_ARENA=true SEGSERVE_ORT_MEM_PATTERN=false)', env: { SEGSERVE_ORT_ARENA: 'true', SEGSERVE_ORT_MEM_PATTERN: 'false' } },
  { label: '2 sessions × 1 thread (SEGSERVE_ORT_SESSIONS=2)', env: { SEGSERVE_ORT_SESSIONS: '2' } },
  { label: '2 sessions, memory pattern off', env: { SEGSERVE_ORT_SESSIONS: '2', SEGSERVE_ORT_MEM_PATTERN: 'false' } },
  { label: '1 request inside (SEGSERVE_MAX_CONCURRENCY=1)', env: { SEGSERVE_MAX_CONCURRENCY: '1' } },
  { label: "glibc's dynamic mmap threshold (MALLOC_MMAP_THRESHOLD_ unset)", env: { MALLOC_MMAP_THRESHOLD_: undefined } },
  { label: 'the earlier defaults: 2 sessions, memory pattern off, dynamic mmap threshold', env: { SEGSERVE_ORT_SESSIONS: '2', SEGSERVE_ORT_MEM_PATTERN: 'false', MALLOC_MMAP_THRESHOLD_: undefined } },
  { label: 'arena off (SEGSERVE_ORT_ARENA=off; the default before arena auto)', env: { SEGSERVE_ORT_ARENA: 'off' } },
  { label: "V8's young generation at 1 MiB per semi-space (NODE_OPTIONS=--max-semi-space-size=1)", env: { NODE_OPTIONS: '--max-semi-space-size=1' } },
];

export async function runMemorySweep({ modelDir, images, configs = SWEEP_CONFIGS, concurrency = 10, seconds = 20, repeats = 1, log = console.log, trees = { after: REPO }, smaps = false }) {
  // Each setting in each tree (--before): the rows rotate every repeat, so two trees go before–after, after–before.
  const rows = configs.flatMap((c) => Object.entries(trees).map(([tree, root]) => ({ ...c, ...(trees.before ? { label: `${tree}: ${c.label}` } : {}), root, runs: [] })));
  for (let r = 0; r < repeats; r++) {
    for (let k = 0; k < rows.length; k++) {
      const row = rows[(k + r) % rows.length];
      const out = await runMemory({ modelDir, images, concurrencies: [concurrency], seconds, env: row.env, log: () => undefined, root: row.root, smaps });
      const m = out.results[0];
      row.runs.push({ peak_rss_mb: m.peak_rss_mb, rss_after_load_mb: m.rss_after_load_mb, throughput: m.sustained.throughput, p50_ms: m.sustained.p50_ms, codes: m.sustained.codes, loadavg: m.loadavg, ...(m.smaps_at_peak ? { smaps_at_peak: m.smaps_at_peak } : {}) });
      log(`  sweep ${row.label}: peak RSS ${m.peak_rss_mb} MB (after load ${m.rss_after_load_mb}), ${m.sustained.throughput} img/s, p50 ${m.sustained.p50_ms} ms (load ${m.loadavg[0]})`);
      if (m.smaps_at_peak) log(`    ${formatSmaps(m.smaps_at_peak)}`);
    }
  }
  return { model_dir: path.relative(REPO, modelDir), concurrency, seconds, rows: rows.map(({ env: _e, root: _r, ...r }) => ({ ...r, peak_rss_mb: Math.max(...r.runs.map((x) => x.peak_rss_mb)), throughput: round(r.runs.map((x) => x.throughput).sort((a, b) => a - b)[Math.floor(r.runs.length / 2)], 3) })) };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const arg = (name, d) => {
    const i = process.argv.indexOf(`--${name}`);
    return i > 0 ? process.argv[i + 1] : d;
  };
  const modelDir = path.resolve(REPO, arg('model', 'models/facade-ads-full/2'));
  const smaps = process.argv.includes('--smaps');
  if (process.argv.includes('--sweep')) {
    const configs = pickByIndex(SWEEP_CONFIGS, arg('configs', ''), 'configs');
    const trees = treesOf(arg('before'));
    console.log(JSON.stringify(await runMemorySweep({ modelDir, images: loadImages(), configs, seconds: Number(arg('seconds', '20')), repeats: Number(arg('repeats', '1')), log: console.error, trees, smaps }), null, 2));
  } else {
    if (process.argv.includes('--before')) throw new Error('--before: with --sweep');
    const out = await runMemory({ modelDir, images: loadImages(), concurrencies: arg('concurrency', '10,50').split(',').map(Number), seconds: Number(arg('seconds', '30')), smaps });
    console.log(JSON.stringify({ ...out, results: out.results.map(({ timeline: _t, ...r }) => r) }, null, 2));
  }
}
