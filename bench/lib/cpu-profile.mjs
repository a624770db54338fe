// V8 CPU profiles of a time window: where a process's main thread spent a burst. A server started
// with `--cpu-prof` writes its whole life; `windowSummary` keeps the samples between two instants
// of CLOCK_MONOTONIC (µs), which V8's profile timestamps and `process.hrtime` share, so a client
// can mark the window in its own process. `profileSelf` profiles the calling process itself.
import inspector from 'node:inspector';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

/** Now on CLOCK_MONOTONIC, µs (the clock of V8's profile timestamps). */
export const monotonicUs = () => Number(process.hrtime.bigint() / 1000n);

/** Where a frame's code lives, coarsely: the bucket its self time is added to. */
function area(frame) {
  const url = frame.url ?? '';
  if (!url) return frame.functionName.startsWith('(') ? frame.functionName : '(native)';
  if (url.includes('@grpc/grpc-js')) return 'grpc-js';
  if (url.includes('protobufjs') || url.includes('@grpc/proto-loader')) return 'protobufjs';
  if (url.startsWith('node:internal/http2') || url.startsWith('node:http2')) return 'node http2';
  if (url.startsWith('node:internal/stream') || url.startsWith('node:stream')) return 'node streams';
  if (url.startsWith('node:')) return 'node other';
  if (url.includes('/node_modules/')) return url.replace(/.*\/node_modules\/((@[^/]+\/)?[^/]+).*/, '$1');
  return 'segserve';
}

/**
 * Self time (ms) per function and per area of the samples in [fromUs, toUs], largest first.
 * `(idle)` is the event loop waiting; `(program)` native work outside JS (e.g. nghttp2, libuv).
 */
export function windowSummary(profile, fromUs, toUs, top = 15) {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const fn = new Map();
  const areas = new Map();
  let t = profile.startTime;
  let total = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    t += profile.timeDeltas[i];
    // A sample's weight is the gap to the next one (the last: the mean gap).
    const next = i + 1 < profile.timeDeltas.length ? profile.timeDeltas[i + 1] : 0;
    if (t < fromUs || t > toUs) continue;
    const frame = byId.get(profile.samples[i]).callFrame;
    const ms = next / 1000;
    total += ms;
    const key = `${frame.functionName || '(anonymous)'} ${path.basename(frame.url || '')}:${frame.lineNumber + 1}`;
    fn.set(key, (fn.get(key) ?? 0) + ms);
    areas.set(area(frame), (areas.get(area(frame)) ?? 0) + ms);
  }
  const sorted = (m) => [...m.entries()].sort((a, b) => b[1] - a[1]).map(([name, ms]) => ({ name, ms: Math.round(ms * 10) / 10 }));
  return { totalMs: Math.round(total * 10) / 10, areas: sorted(areas), functions: sorted(fn).slice(0, top) };
}

/**
 * The main thread's profile in `dir`, written by `--cpu-prof` at exit as
 * CPU.<date>.<time>.<pid>.<thread id>.<seq>.cpuprofile; worker threads (the onnxruntime
 * workers) write their own, with thread ids from 1.
 */
export function mainThreadProfile(dir) {
  const main = readdirSync(dir).find((f) => /^CPU\.\d+\.\d+\.\d+\.0\.\d+\.cpuprofile$/.test(f));
  if (!main) throw new Error(`no main-thread .cpuprofile in ${dir}`);
  return JSON.parse(readFileSync(path.join(dir, main), 'utf8'));
}

/** Profiles this process while `fn` runs; resolves with [fn's result, the profile]. */
export async function profileSelf(fn, intervalUs = 100) {
  const session = new inspector.Session();
  session.connect();
  const post = (method, params) => new Promise((resolve, reject) => session.post(method, params, (err, res) => (err ? reject(err) : resolve(res))));
  await post('Profiler.enable');
  await post('Profiler.setSamplingInterval', { interval: intervalUs });
  await post('Profiler.start');
  try {
    const result = await fn();
    const { profile } = await post('Profiler.stop');
    return [result, profile];
  } finally {
    session.disconnect();
  }
}

/** One line per area and the top functions, for a report. */
export function formatSummary(label, s) {
  const areas = s.areas.map((a) => `${a.name} ${a.ms}`).join(', ');
  const fns = s.functions.map((f) => `    ${String(f.ms).padStart(6)} ms  ${f.name}`).join('\n');
  return `  ${label}: ${s.totalMs} ms sampled — ${areas}\n${fns}`;
}
