// Where the time of a refused burst goes (issue 15, "OVERLOADED in < 50 ms p95 at 50
// concurrent"): a fresh inference process per setting and repeat (settings interleaved), a burst
// of `c` full-size uploads at the same instant on one connection, as bench/memory.mjs sends
// them, with timestamps at each end. Per burst: when the
// client had handed every call to grpc-js (its own send loop), when the server refused the first
// and the last of the excess (its 'request rejected' log lines, at: 'edge'), and when the client
// saw each refusal. Connections: `cold` (a new client, connected by the burst itself, as
// bench/memory.mjs does) and/or `warm` (established first, as the gateway's is).
//
//   node bench/burst.mjs [--model models/facade-ads-full/2] [--concurrency 50] [--repeats 3]
//        [--settings 'default;SEGSERVE_ORT_NICE=10'] [--connections cold,warm] [--profile]
//        [--servers inference,grpc,h2] [--issue together,spread] [--prime 0,1] [--out burst.json]
//        [--before /path/to/other/checkout] [--probe gc,headers]
//
// --out: every row with its calls' timeline (each call's start and answer, ms after the first
// call; the client's HEADERS submissions; the server's refusals), as JSON.
// --issue: how the client issues its `c` calls. `together` (the default, as bench/memory.mjs):
// all in one synchronous loop, so grpc-js submits every call's headers and serialises every
// upload in that one turn of the client's event loop before any of it is sent; each call's
// latency (from its own Segment() to its answer) then includes the client's work on the calls
// after it. `spread`: one call per turn of the event loop (setImmediate between calls), as
// independent callers — a gateway relaying uploads as each arrives — issue them; each call's
// latency is then its own.
//
// --servers: besides the inference process, the floors under it (bench/workers/refuser.mjs, no
// model, the same capacity): `grpc` (grpc-js + the segserve edge guard) and `h2` (Node's http2
// alone); these also report when each call's headers arrived.
//
// --prime: before its first burst, each process gets this many uploads (issued one per turn, on
// a connection of their own; beyond its capacity they are refused), so that the first burst
// meets a process that has served; several values are interleaved like settings. Each burst's row says whether it was its
// process's first (the summary splits the two).
//
// --before: the inference process of another built checkout as well, interleaved with this one's
// like settings (labels 'before: …' / 'after: …'; bench/lib/trees.mjs) — this bench, that tree's
// service.
//
// --probe: bench/workers/probe.mjs preloaded into each server: `gc`, the server's garbage
// collections of 1 ms or more from the first call to the last refusal the client saw (per burst,
// and in the summary how many bursts had one); `headers`, when each call's HEADERS reached the
// server, and per burst the median and largest wait from the client's submission to that (the
// n-th submitted against the n-th arrived: one connection keeps their order).
//
// --profile: V8 CPU profiles of both ends over each burst (the server's main thread via
// --cpu-prof, the client in-process), summarised as self time per area and function
// (--keep-profiles keeps the server's .cpuprofile files for a closer look).
import { monitorEventLoopDelay } from 'node:perf_hooks';
import path from 'node:path';
import { readFileSync } from 'node:fs';
import { args } from './lib/args.mjs';
import { segmenterClient, segment } from './lib/clients.mjs';
import { loadImages } from './lib/images.mjs';
import { REPO, baseEnv, launch, loadAverage, startInference } from './lib/procs.mjs';
import { treesOf } from './lib/trees.mjs';
import { formatSummary, mainThreadProfile, monotonicUs, profileSelf, windowSummary } from './lib/cpu-profile.mjs';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import http2 from 'node:http2';
import { percentile, round } from './lib/stats.mjs';

const a = args(process.argv.slice(2));
const modelDir = path.resolve(REPO, a.model ?? 'models/facade-ads-full/2');
const c = Number(a.concurrency ?? 50);
const repeats = Number(a.repeats ?? 3);
const connections = (a.connections ?? 'cold').split(',');
const issues = (a.issue ?? 'together').split(',');
for (const i of issues) if (i !== 'together' && i !== 'spread') throw new Error(`--issue: together or spread, not ${i}`);
// Settings of the service's own variables, ';'-separated: e.g. 'default;SEGSERVE_ORT_NICE=10'.
const settings = (a.settings ?? 'default').split(';');
const servers = (a.servers ?? 'inference').split(',');
const trees = treesOf(a.before);
const probes = a.probe ? a.probe.split(',') : [];
for (const p of probes) if (p !== 'gc' && p !== 'headers') throw new Error(`--probe: gc and/or headers, not ${p}`);
const PROBE = new URL('./workers/probe.mjs', import.meta.url).href;
const primes = String(a.prime ?? '0').split(',').map(Number);
for (const p of primes) if (!Number.isInteger(p) || p < 0) throw new Error(`--prime: whole numbers ≥ 0, not ${a.prime}`);
const variants = servers
  .flatMap((server) => settings.map((setting) => ({ server, setting, label: server === 'inference' ? setting : `${server} floor` })))
  .filter((v, i, all) => v.server === 'inference' || all.findIndex((w) => w.server === v.server) === i)
  .flatMap((v) => primes.map((prime) => ({ ...v, prime, label: primes.length > 1 ? `${v.label}, prime ${prime}` : v.label })))
  .flatMap((v) => (v.server === 'inference' && trees.before ? Object.keys(trees).map((tree) => ({ ...v, tree, label: `${tree}: ${v.label}` })) : [{ ...v, tree: 'after' }]));
const profiling = a.profile !== undefined;
const model = JSON.parse(readFileSync(path.join(modelDir, 'model.json'), 'utf8')).name;
const images = loadImages();

const epoch = () => performance.timeOrigin + performance.now();

// When grpc-js submits each call's HEADERS (http2 session.request) and writes its message, in
// this process: the client's share of the burst. Node keeps the client session class private;
// its prototype is reached through one short-lived session.
const clientTimes = { requests: [], writes: [] };
{
  const probe = http2.connect('http://127.0.0.1:9');
  probe.on('error', () => {});
  const proto = Object.getPrototypeOf(probe);
  probe.destroy();
  const request = proto.request;
  proto.request = function (...args) {
    const stream = request.apply(this, args);
    clientTimes.requests.push(epoch());
    const write = stream.write;
    stream.write = function (...w) {
      clientTimes.writes.push(epoch());
      return write.apply(this, w);
    };
    return stream;
  };
}

/**
 * CPU time and run-queue wait (ms, /proc/<pid>/task/<tid>/schedstat) of each thread of `pid`:
 * whether a thread was working or waiting for a core. {} where /proc has no schedstat.
 */
function threadTimes(pid) {
  const out = {};
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      try {
        const [run, wait] = readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ').map(Number);
        const name = Number(tid) === pid ? 'main' : readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim();
        out[tid] = { name, run: run / 1e6, wait: wait / 1e6 };
      } catch {
        // the thread ended
      }
    }
  } catch {
    // not Linux, or the process is gone
  }
  return out;
}

/** Per thread name, the CPU and run-queue wait between two `threadTimes`, ms. */
function threadDelta(before, after) {
  const byName = {};
  for (const [tid, t] of Object.entries(after)) {
    const b = before[tid] ?? { run: 0, wait: 0 };
    const d = (byName[t.name] ??= { run: 0, wait: 0 });
    d.run += t.run - b.run;
    d.wait += t.wait - b.wait;
  }
  return Object.fromEntries(Object.entries(byName).filter(([, d]) => d.run + d.wait >= 0.5).map(([n, d]) => [n, { run: round(d.run, 1), wait: round(d.wait, 1) }]));
}

const formatThreads = (d) => Object.entries(d).map(([n, t]) => `${n} ${t.run}/${t.wait}`).join(', ');

function ready(client) {
  return new Promise((resolve, reject) => client.waitForReady(Date.now() + 10_000, (err) => (err ? reject(err) : resolve())));
}

/**
 * The server's edge refusals since `from` (epoch ms), as epoch ms, when each call's headers
 * arrived (floors, and --probe headers) and its garbage collections (--probe gc).
 */
function serverTimes(inf, from) {
  const refused = [];
  let headers = [];
  const gc = [];
  for (const line of inf.output().split('\n')) {
    try {
      if (line.startsWith('{"probe":')) {
        const o = JSON.parse(line);
        if (o.probe === 'headers' && o.at[0] >= from - 1) headers = o.at;
        if (o.probe === 'gc' && o.start >= from - 1) gc.push(o);
        continue;
      }
      if (line.includes('"burst"')) {
        const b = JSON.parse(line).burst;
        if (b.headers[0] >= from - 1) ({ headers } = b), refused.push(...b.refused);
      }
      if (!line.includes('"request rejected"') || !line.includes('"edge"')) continue;
      const t = Date.parse(JSON.parse(line).time);
      if (t >= from - 1) refused.push(t);
    } catch {
      // not a JSON line
    }
  }
  return { refused: refused.sort((x, y) => x - y), headers: headers.sort((x, y) => x - y), gc };
}

/** A server for the variant: the inference process, or a floor without a model. */
function startServer(variant, profileArgs) {
  const nodeArgs = [...profileArgs, ...(probes.length ? [`--import=${PROBE}`] : [])];
  const probeEnv = probes.length ? { BENCH_PROBE: probes.join(',') } : {};
  if (variant.server === 'inference') return startInference(modelDir, { SEGSERVE_LOG_LEVEL: 'info', ...envOf(variant.setting), ...probeEnv }, 'inference', nodeArgs, trees[variant.tree]);
  return launch(process.execPath, [...nodeArgs, path.join(REPO, 'bench', 'workers', 'refuser.mjs'), '--mode', variant.server, '--capacity', String(a.capacity ?? 18)], {
    name: `refuser ${variant.server}`,
    env: baseEnv(probeEnv),
    ready: (o) => o?.grpc_port !== undefined,
  });
}

/** `A=1 B=2` → {A: '1', B: '2'}; 'default' → {}. */
const envOf = (setting) => Object.fromEntries(setting.split(' ').filter((kv) => kv.includes('=')).map((kv) => kv.split('=')));

console.log(`burst: ${model} (${path.relative(REPO, modelDir)}), c=${c}, ${repeats} repeats, ${variants.map((v) => v.label).join(' | ')}, connection ${connections.join(', ')}, load ${loadAverage().join(' ')}`);
const rows = [];
const timelines = [];
for (let r = 0; r < repeats; r++) {
  const order = [...variants.slice(r % variants.length), ...variants.slice(0, r % variants.length)];
  for (const variant of order) {
    const setting = variant.label;
    // A fresh process per setting and repeat, as bench/memory.mjs starts one.
    const profileDir = profiling ? mkdtempSync(path.join(os.tmpdir(), 'burst-prof-')) : undefined;
    const nodeArgs = profiling ? ['--cpu-prof', '--cpu-prof-interval=100', `--cpu-prof-dir=${profileDir}`] : [];
    const inf = await startServer(variant, nodeArgs);
    const windows = [];
    const capacity = variant.server === 'inference' ? inf.line.max_concurrency + inf.line.max_queue : Number(a.capacity ?? 18);
    if (variant.prime > 0) {
      const client = segmenterClient(`127.0.0.1:${inf.line.grpc_port}`);
      const primed = [];
      for (let i = 0; i < variant.prime; i++) {
        if (i > 0) await new Promise((resolve) => setImmediate(resolve));
        primed.push(segment(client, { model, image: images[i % images.length].bytes, mask_format: 'PNG' }));
      }
      for (const o of await Promise.all(primed)) if (o.code !== 'OK' && o.code !== 'OVERLOADED') throw new Error(`prime call answered ${o.code}`);
      client.close();
    }
    const modes = connections.flatMap((connection) => issues.map((issue) => ({ connection, issue })));
    let first = true;
    for (const { connection, issue } of r % 2 === 0 ? modes : [...modes].reverse()) {
      const client = segmenterClient(`127.0.0.1:${inf.line.grpc_port}`);
      if (connection === 'warm') await ready(client);
      const loop = monitorEventLoopDelay({ resolution: 1 });
      loop.enable();
      const load = loadAverage()[0];
      let start = 0;
      let handedOver = 0;
      const fromUs = monotonicUs();
      // Threads' CPU and wait, both ends, from the first call to the last refusal of the excess.
      const excess = c - capacity;
      let refusedSeen = 0;
      const threadsBefore = { server: threadTimes(inf.pid), client: threadTimes(process.pid) };
      let threadsAtLast;
      const burst = async () => {
        clientTimes.requests.length = 0;
        clientTimes.writes.length = 0;
        start = epoch();
        const calls = [];
        for (let i = 0; i < c; i++) {
          if (issue === 'spread' && i > 0) await new Promise((resolve) => setImmediate(resolve));
          const issued = epoch() - start;
          calls.push(
            segment(client, { model, image: images[i % images.length].bytes, mask_format: 'PNG' }).then((o) => {
              if (o.code === 'OVERLOADED' && ++refusedSeen === excess) threadsAtLast = { server: threadTimes(inf.pid), client: threadTimes(process.pid) };
              return { ...o, at: epoch() - start, issued };
            }),
          );
        }
        handedOver = epoch() - start;
        return Promise.all(calls);
      };
      const [outcomes, clientProfile] = profiling ? await profileSelf(burst) : [await burst()];
      loop.disable();
      client.close();
      const refused = outcomes.filter((o) => o.code === 'OVERLOADED').sort((x, y) => x.ms - y.ms).slice(0, Math.max(0, c - capacity));
      if (variant.server !== 'inference') await new Promise((resolve) => setTimeout(resolve, 400)); // its burst line
      const times = serverTimes(inf, start);
      const server = times.refused.map((t) => t - start);
      const headers = times.headers.map((t) => t - start);
      // Up to the last refusal of the excess the client saw: the admitted calls' work after it is not the burst's.
      const windowEnd = Math.max(...refused.map((o) => o.at));
      const gc = times.gc.map((g) => ({ at: round(g.start - start, 1), ms: g.ms, kind: g.kind })).filter((g) => g.at + g.ms >= 0 && g.at <= windowEnd);
      const headersWait = headers.slice(0, clientTimes.requests.length).map((t, i) => t - (clientTimes.requests[i] - start));
      const row = {
        setting,
        connection,
        issue,
        repeat: r,
        first_burst: first,
        load,
        codes: outcomes.reduce((m, o) => ({ ...m, [o.code]: (m[o.code] ?? 0) + 1 }), {}),
        client_send_loop_ms: round(handedOver, 1),
        client_headers_ms: [clientTimes.requests[0], clientTimes.requests[capacity], clientTimes.requests.at(-1)].map((t) => round(t - start, 1)),
        client_writes_ms: [clientTimes.writes[0], clientTimes.writes.at(-1)].map((t) => round(t - start, 1)),
        server_first_refusal_ms: round(server[0] ?? NaN, 1),
        server_last_refusal_ms: round(server.at(-1) ?? NaN, 1),
        refused_p50_ms: round(percentile(refused.map((o) => o.ms), 50), 1),
        refused_p95_ms: round(percentile(refused.map((o) => o.ms), 95), 1),
        refused_max_ms: round(Math.max(...refused.map((o) => o.ms)), 1),
        // The same refusals timed from the burst's start (the first call), not from their own call.
        refused_p95_from_start_ms: round(percentile(refused.map((o) => o.at), 95), 1),
        client_loop_delay_max_ms: round(loop.max / 1e6, 1),
        threads_ms: threadsAtLast ? { server: threadDelta(threadsBefore.server, threadsAtLast.server), client: threadDelta(threadsBefore.client, threadsAtLast.client) } : undefined,
        ...(headers.length ? { server_headers_first_ms: round(headers[0], 1), server_headers_excess_first_ms: round(headers[capacity] ?? NaN, 1), server_headers_last_ms: round(headers.at(-1), 1) } : {}),
        ...(probes.includes('headers') ? { headers_wait_median_ms: round(percentile(headersWait, 50), 1), headers_wait_max_ms: round(Math.max(...headersWait), 1) } : {}),
        ...(probes.includes('gc') ? { server_gc: gc } : {}),
      };
      rows.push(row);
      timelines.push({ ...row, calls: outcomes.map((o) => ({ code: o.code, issued: round(o.issued, 2), answered: round(o.at, 2) })), client_headers: clientTimes.requests.map((t) => round(t - start, 2)), server_refusals: server.map((t) => round(t, 1)), server_headers: headers.map((t) => round(t, 1)) });
      first = false;
      if (profiling) {
        const toUs = fromUs + windowEnd * 1000;
        windows.push({ label: `${setting} ${connection} ${issue} r${r}`, fromUs, toUs, client: windowSummary(clientProfile, fromUs, toUs) });
      }
      console.log(`  [${setting}] ${connection} ${issue} r${r}${row.first_burst ? ' (first burst)' : ''}: refused p50 ${row.refused_p50_ms} p95 ${row.refused_p95_ms} max ${row.refused_max_ms} ms (p95 from the first call ${row.refused_p95_from_start_ms}); client send loop ${row.client_send_loop_ms} ms, headers submitted ${row.client_headers_ms[0]}–${row.client_headers_ms[2]} ms (first of the excess ${row.client_headers_ms[1]}), messages written ${row.client_writes_ms.join('–')} ms; server refusals at ${row.server_first_refusal_ms}–${row.server_last_refusal_ms} ms; client loop delay max ${row.client_loop_delay_max_ms} ms;${row.threads_ms ? ` CPU/run-queue wait ms to the last refusal: server ${formatThreads(row.threads_ms.server)}; client ${formatThreads(row.threads_ms.client)};` : ''}${headers.length ? ` headers arrived ${row.server_headers_first_ms}–${row.server_headers_last_ms} ms (first of the excess ${row.server_headers_excess_first_ms});` : ''}${row.headers_wait_median_ms !== undefined ? ` HEADERS submitted → read median ${row.headers_wait_median_ms} max ${row.headers_wait_max_ms} ms;` : ''}${row.server_gc ? ` server GC ≥ 1 ms to the last refusal: ${row.server_gc.map((g) => `${g.kind} ${g.ms} ms at ${g.at}`).join(', ') || 'none'};` : ''} ${JSON.stringify(row.codes)} (load ${load})`);
    }
    await inf.stop();
    if (profiling) {
      const server = mainThreadProfile(profileDir);
      for (const w of windows) {
        console.log(`  profile ${w.label}, ${round((w.toUs - w.fromUs) / 1000, 1)} ms from the first call to the last refusal the client saw (monotonic µs ${w.fromUs}–${w.toUs}):`);
        console.log(formatSummary('server', windowSummary(server, w.fromUs, w.toUs)));
        console.log(formatSummary('client', w.client));
      }
      if (a['keep-profiles'] === undefined) rmSync(profileDir, { recursive: true, force: true });
      else console.log(`  server profiles kept in ${profileDir}`);
    }
  }
}
console.log(`load ${loadAverage().join(' ')}`);
if (a.out) writeFileSync(path.resolve(a.out), `${JSON.stringify(timelines, null, 1)}\n`);
for (const setting of variants.map((v) => v.label)) {
  for (const connection of connections) {
    for (const issue of issues) {
      const these = rows.filter((x) => x.setting === setting && x.connection === connection && x.issue === issue);
      const p95 = these.map((x) => x.refused_p95_ms);
      const split = [true, false].map((f) => these.filter((x) => x.first_burst === f).map((x) => x.refused_p95_ms));
      const byFirst = (f, fn) => these.filter((x) => x.first_burst === f).map(fn);
      const gc = probes.includes('gc') ? [true, false].map((f) => byFirst(f, (x) => x.server_gc.map((g) => `${g.kind} ${g.ms}`).join(' + ') || '–').join(', ')) : undefined;
      const wait = probes.includes('headers') ? [true, false].map((f) => byFirst(f, (x) => x.headers_wait_median_ms).join(', ')) : undefined;
      console.log(`[${setting}] ${connection} ${issue}: refused p95 per repeat ${p95.join(', ')} ms (median ${round(percentile(p95, 50), 1)}; a process's first burst ${split[0].join(', ') || '–'}, later ${split[1].join(', ') || '–'})${wait ? `; HEADERS submitted → read, median per burst: first ${wait[0] || '–'}, later ${wait[1] || '–'} ms` : ''}${gc ? `; server GC ≥ 1 ms in the window, per burst: first ${gc[0] || '–'}, later ${gc[1] || '–'} ms` : ''}`);
    }
  }
}
