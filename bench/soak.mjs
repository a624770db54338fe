// The soak of issue 8 / docs/reliability.md item 21: the whole local system (nats-server, Prometheus when
// installed, the promoter with the local driver serving the stable model, the gateway following
// the rollout state) under mixed uploads for many minutes — several image sizes, 10 % bad inputs
// — with one canary rollout in the middle. Records every request's code, the RSS of every process
// over time (plot: docs/bench-soak-rss.png), and the RSS trend per process after warm-up.
//
//   node bench/soak.mjs [--minutes 20] [--model models/facade-ads/2] [--candidate models/facade-ads/3]
//                       [--rollout-at 0.25] [--concurrency 4] [--bad 0.1] [--no-prometheus]
//                       [--claims <metrics.json>]   (claimed figures, when the candidate's model.json has none)
//                       [--policy <file or dir>]    (instead of the relaxed soak policy below, e.g. services/promoter/policies)
//
// The promoter runs the production canary settings of services/promoter/policies/facade-ads.yaml
// (steps 10/25/50 %, 30 s intervals, 60 s bake) but with the accuracy and latency floors relaxed,
// so that the rollout happens whatever the bundled versions' figures are: the soak is about the
// system under a rollout, not about which version wins.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { closedLoop } from './lib/load.mjs';
import { httpAgent, isTableCode, multipartBody, postRaw, segment, segmenterClient } from './lib/clients.mjs';
import { badInputs, loadImages, resizedSet } from './lib/images.mjs';
import { REPO, SEGSERVE_BIN, baseEnv, launch, loadAverage, machine, memory } from './lib/procs.mjs';
import { chartSvg, writePng } from './lib/plot.mjs';
import { countBy, mean, round, slope } from './lib/stats.mjs';
import { createServer } from 'node:net';
import { parseStartupLine } from '@segserve/proto';

function args(argv) {
  const a = {};
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i].replace(/^--/, '');
    if (argv[i + 1] === undefined || argv[i + 1].startsWith('--')) a[k] = 'true';
    else a[k] = argv[++i];
  }
  return a;
}

const freePort = () =>
  new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });

function which(name) {
  return (process.env.PATH ?? '').split(':').concat(['/usr/sbin', '/usr/bin']).map((d) => path.join(d, name)).find((p) => existsSync(p));
}

/** Every descendant of `root` (pid → {ppid, role}). Roles from the command line and environment. */
function descendants(root) {
  const procs = new Map();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      procs.set(Number(d), ppid);
    } catch {
      // gone
    }
  }
  const out = [];
  const walk = (pid) => {
    for (const [child, ppid] of procs) if (ppid === pid) (out.push(child), walk(child));
  };
  walk(root);
  return out;
}

function role(pid) {
  try {
    const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    if (cmd.some((c) => c.endsWith('nats-server'))) return 'nats-server';
    if (cmd.some((c) => c.endsWith('prometheus'))) return 'prometheus';
    const sub = cmd[cmd.findIndex((c) => c.endsWith('bin.js')) + 1];
    if (sub === 'inference') {
      const env = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
      const dir = env.find((e) => e.startsWith('SEGSERVE_MODEL_DIR='))?.split('=')[1] ?? cmd[cmd.indexOf('--model') + 1] ?? '';
      return `inference ${path.basename(path.dirname(dir))}/${path.basename(dir)} (pid ${pid})`;
    }
    return sub ?? path.basename(cmd[0] ?? '?');
  } catch {
    return undefined;
  }
}

const a = args(process.argv.slice(2));
if (a.replot) {
  // node bench/soak.mjs --replot bench/results/soak-<stamp>.json  (re-draws the PNG from a saved run)
  const saved = JSON.parse(readFileSync(path.resolve(a.replot), 'utf8'));
  await plotSoak(saved, saved.samples, path.join(REPO, 'docs', `bench-soak-rss${saved.minutes < 20 ? '-short' : ''}.png`));
  process.exit(0);
}
const minutes = Number(a.minutes ?? 20);
const modelDir = path.resolve(REPO, a.model ?? 'models/facade-ads/2');
const candidateDir = a.candidate ? path.resolve(REPO, a.candidate) : undefined;
const rolloutAt = Number(a['rollout-at'] ?? 0.25);
const concurrency = Number(a.concurrency ?? 4);
const badShare = Number(a.bad ?? 0.1);
const model = JSON.parse(readFileSync(path.join(modelDir, 'model.json'), 'utf8')).name;
const work = mkdtempSync(path.join(os.tmpdir(), 'segserve-soak-'));
const log = (s) => console.log(`[${new Date().toISOString().slice(11, 19)}] ${s}`);
const started = new Date();
const children = [];

// ---- the stack -------------------------------------------------------------------------------
const ports = { nats: await freePort(), http: await freePort(), grpc: await freePort(), metrics: await freePort(), prom: await freePort() };
const natsUrl = `nats://127.0.0.1:${ports.nats}`;
writeFileSync(path.join(work, 'nats.conf'), `listen: 127.0.0.1:${ports.nats}\nserver_name: segserve_soak\njetstream { store_dir: ${JSON.stringify(path.join(work, 'js'))}, max_memory_store: 256MB, max_file_store: 24GB }\n`);
const natsBin = which('nats-server');
if (!natsBin) throw new Error('nats-server is not installed; install it with: apt-get install -y nats-server (or: bash scripts/setup.sh)');
children.push(await launch(natsBin, ['-c', path.join(work, 'nats.conf')], { name: 'nats-server', env: baseEnv(), ready: (_o, line) => line.includes('Server is ready') }));

const policy = {
  model,
  objectives: [
    { metric: 'miou', better: 'higher', tolerance: 1 },
    { metric: 'latency_ms_p95', better: 'lower', tolerance: 10, relative: true },
    { metric: 'peak_rss_mb', better: 'lower', tolerance: 10, relative: true },
  ],
  limits: { latency_ms_p95: 100_000, peak_rss_mb: 4_000, miou_min: 0 },
  min_improvement: { miou: 0, latency_ms_p95: 0, peak_rss_mb: 0 },
  verify: { golden: true, claim_tolerance: { miou: 1, latency_ms_p95: 100 } },
  canary: { steps: [10, 25, 50], interval: '30s', min_requests: 50, max_failed_checks: 2, max_error_rate: 0.2, max_latency_ratio: 3, max_rss_fraction: 0.9, bake: '60s' },
};
mkdirSync(path.join(work, 'policies'));
writeFileSync(path.join(work, 'policies', `${model}.json`), JSON.stringify(policy));
const keys = spawn(process.execPath, [SEGSERVE_BIN, 'keys', 'generate', '--out', path.join(work, 'publisher.seed')], { env: baseEnv() });
const keyText = await new Promise((resolve) => {
  let t = '';
  keys.stdout.on('data', (d) => (t += d));
  keys.on('exit', () => resolve(t));
});
const publicKey = /public key: (\S+)/.exec(keyText)?.[1];

let promUrl;
const promBin = a['no-prometheus'] === 'true' ? undefined : which('prometheus');
if (promBin) {
  writeFileSync(path.join(work, 'prometheus.yml'), JSON.stringify({ global: { scrape_interval: '5s' }, scrape_configs: [{ job_name: 'inference', http_sd_configs: [{ url: `http://127.0.0.1:${ports.metrics}/sd/inference`, refresh_interval: '5s' }] }, { job_name: 'gateway', static_configs: [{ targets: [`127.0.0.1:${ports.http}`] }] }] }));
  promUrl = `http://127.0.0.1:${ports.prom}`;
  const prom = launch(promBin, [`--config.file=${path.join(work, 'prometheus.yml')}`, `--storage.tsdb.path=${path.join(work, 'prom')}`, `--web.listen-address=127.0.0.1:${ports.prom}`], { name: 'prometheus', env: baseEnv(), ready: (_o, line) => line.includes('Server is ready to receive web requests') });
  children.push(await prom);
}
// Model roots: where the local driver finds <model>/<version>/ and the golden set <model>/golden/.
const roots = [...new Set([modelDir, candidateDir].filter(Boolean).map((d) => path.dirname(path.dirname(d))))].join(',');
const promoter = await launch(process.execPath, [SEGSERVE_BIN, 'promoter'], {
  name: 'promoter',
  env: baseEnv({ SEGSERVE_NATS_URL: natsUrl, SEGSERVE_DEPLOYER: 'local', SEGSERVE_METRICS_PORT: String(ports.metrics), SEGSERVE_SIGNERS: publicKey, SEGSERVE_INITIAL_STABLE: modelDir, SEGSERVE_MODEL_ROOTS: roots, SEGSERVE_GOLDEN_ROOT: roots.split(',')[0], SEGSERVE_POLICY: a.policy ? path.resolve(a.policy) : path.join(work, 'policies'), ...(promUrl ? { SEGSERVE_PROMETHEUS_URL: promUrl } : {}) }),
  ready: (o) => o?.msg === 'initial stable serving' || o?.msg === 'could not serve the initial stable',
  timeoutMs: 300_000,
});
children.push(promoter);
if (promoter.line.msg !== 'initial stable serving') throw new Error(`the promoter could not serve ${modelDir}:\n${promoter.output()}`);
const gateway = await launch(process.execPath, [SEGSERVE_BIN, 'gateway'], { name: 'gateway', env: baseEnv({ SEGSERVE_NATS_URL: natsUrl, SEGSERVE_HTTP_PORT: String(ports.http), SEGSERVE_GRPC_PORT: String(ports.grpc), SEGSERVE_HOST: '127.0.0.1' }), ready: (_o, line) => parseStartupLine('gateway', line) !== undefined });
children.push(gateway);
// The gateway learns the route from NATS KV a moment after it listens: wait for a first answer.
for (let i = 0; ; i++) {
  const probe = await postRaw(`http://127.0.0.1:${ports.http}/v1/models/${model}/segment`, multipartBody(loadImages()[0].bytes));
  if (probe.code === 'OK') break;
  if (i > 600) throw new Error(`the gateway does not serve ${model}: ${probe.code}`);
  await new Promise((r) => setTimeout(r, 100));
}
log(`stack up: gateway http ${ports.http} grpc ${ports.grpc}, nats ${ports.nats}, prometheus ${promUrl ?? 'not installed'}; model ${path.relative(REPO, modelDir)}; load average ${loadAverage().join(' ')}`);

// ---- workload: mixed sizes, bad inputs ---------------------------------------------------------
const golden = loadImages();
const good = [...golden.map((g) => ({ ...g, kind: 'jpeg-1152' })), ...(await resizedSet(golden))];
const bad = badInputs(golden[0].bytes);
const restUrl = `http://127.0.0.1:${ports.http}/v1/models/${model}/segment`;
const grpcClient = segmenterClient(`127.0.0.1:${ports.grpc}`);
const agent = httpAgent(concurrency);
const bodies = new Map();
const bodyOf = (item) => bodies.get(item) ?? bodies.set(item, multipartBody(item.bytes, { contentType: 'application/octet-stream' })).get(item);
const t0 = performance.now();
const now = () => (performance.now() - t0) / 1000;
const requests = [];
let seq = 0;
// A fixed interleaving: request i is bad when its position in a 10-cycle falls under the share.
const pickInput = (i) => ((i * 7919) % 100 < badShare * 100 ? { item: bad[i % bad.length], bad: true } : { item: good[i % good.length], bad: false });
async function send() {
  const i = seq++;
  const { item, bad: isBad } = pickInput(i);
  const grpc = i % 2 === 1;
  // Empty images are a multipart matter (REST); over gRPC they are just empty bytes.
  const o = grpc ? await segment(grpcClient, { model, image: item.bytes, mask_format: 'PNG' }, { timeoutMs: 60_000 }) : await postRaw(restUrl, bodyOf(item), { agent, timeoutMs: 60_000 });
  const expected = isBad ? item.expect.includes(o.code) : o.code === 'OK' || o.code === 'OVERLOADED';
  requests.push({ t: round(now(), 2), kind: item.kind, protocol: grpc ? 'grpc' : 'rest', code: o.code, ms: round(o.ms), expected, table: isTableCode(o.code), version: o.response?.version });
  return o;
}

// ---- sampling RSS of every process ------------------------------------------------------------
const samples = []; // {t, role: rssMb}
const sampler = setInterval(() => {
  const row = { t: round(now(), 1) };
  for (const root of children) {
    for (const pid of [root.pid, ...descendants(root.pid)]) {
      const r = role(pid);
      const m = memory(pid);
      if (r && m) row[r] = round(m.rssMb);
    }
  }
  samples.push(row);
}, 2_000);

// ---- one rollout during the soak ---------------------------------------------------------------
const events = [];
let rollout;
const rolloutTimer = setTimeout(async () => {
  if (!candidateDir) return log('no --candidate: no rollout');
  log(`publishing ${path.relative(REPO, candidateDir)}`);
  const claims = a.claims ? ['--result', path.resolve(a.claims)] : [];
  const pub = await launch(process.execPath, [SEGSERVE_BIN, 'publish', '--model', candidateDir, ...claims, '--seed-file', path.join(work, 'publisher.seed'), '--json', '--id', `soak-${Date.now()}`], { name: 'publish', env: baseEnv({ SEGSERVE_NATS_URL: natsUrl }), ready: (o) => o?.result?.id !== undefined, timeoutMs: 300_000 }).catch((err) => {
    log(`publish failed: ${err.message}`);
    return undefined;
  });
  if (!pub) return;
  const id = pub.line.result.id;
  events.push({ t: round(now(), 1), what: `published ${id}` });
  rollout = spawn(process.execPath, [SEGSERVE_BIN, 'rollout', 'watch', model, '--until-done', '--experiment', id, '--json', '--timeout', '30m'], { env: baseEnv({ SEGSERVE_NATS_URL: natsUrl }) });
  let lastPhase = '';
  createInterface({ input: rollout.stdout }).on('line', (line) => {
    try {
      const o = JSON.parse(line);
      const phase = o.decision ? `decision ${o.decision.status}${o.decision.status === 'promoted' ? '' : `: ${o.decision.reason}`}` : `${o.phase}${o.phase === 'Canary' ? `@${o.canary?.weight}` : ''}`;
      if (phase !== lastPhase) {
        lastPhase = phase;
        events.push({ t: round(now(), 1), what: phase });
        log(`rollout: ${phase}`);
      }
    } catch {
      // a text line
    }
  });
}, rolloutAt * minutes * 60_000);

log(`soak: ${minutes} min, ${concurrency} clients (REST and gRPC alternating), ${badShare * 100} % bad inputs, rollout at ${Math.round(rolloutAt * minutes * 60)} s`);
const progress = setInterval(() => {
  const last = requests.filter((r) => r.t > now() - 60);
  log(`${Math.round(now())} s: ${requests.length} requests, last minute ${JSON.stringify(countBy(last.map((r) => r.code)))}; load ${loadAverage()[0]}`);
}, 60_000);
await closedLoop({ concurrency, durationS: minutes * 60, send });
clearInterval(progress);
clearInterval(sampler);
clearTimeout(rolloutTimer);
const wall = now();

// ---- shut down ---------------------------------------------------------------------------------
grpcClient.close();
agent.destroy();
rollout?.kill('SIGTERM');
const exitCodes = {};
for (const c of [...children].reverse()) exitCodes[c.name] = c.hasExited() ? `exited early (${await c.exited})` : await c.stop(30_000);
rmSync(work, { recursive: true, force: true });

// ---- analysis ----------------------------------------------------------------------------------
const roles = [...new Set(samples.flatMap((s) => Object.keys(s).filter((k) => k !== 't')))];
const trend = {};
for (const r of roles) {
  const pts = samples.filter((s) => s[r] !== undefined).map((s) => [s.t, s[r]]);
  // Warm-up excluded: the first 20 % of the process's own samples (model load, first requests).
  const steady = pts.slice(Math.floor(pts.length * 0.2));
  if (steady.length < 10) continue;
  const perMin = slope(steady.map((p) => p[0] / 60), steady.map((p) => p[1]));
  const spanMin = (steady.at(-1)[0] - steady[0][0]) / 60;
  trend[r] = { samples: pts.length, first_mb: pts[0][1], peak_mb: Math.max(...pts.map((p) => p[1])), last_mb: pts.at(-1)[1], steady_mean_mb: round(mean(steady.map((p) => p[1]))), slope_mb_per_min: round(perMin, 2), drift_over_steady_mb: round(perMin * spanMin, 1), steady_minutes: round(spanMin, 1) };
  // A rollout is a step (verification, a new process); growth is judged after it as well.
  const settled = events.find((e) => /^decision|Succeeded|Failed/.test(e.what))?.t;
  const after = settled === undefined ? [] : pts.filter((p) => p[0] > settled + 30);
  if (after.length >= 10) trend[r].after_rollout_slope_mb_per_min = round(slope(after.map((p) => p[0] / 60), after.map((p) => p[1])), 2);
}
// Answers per 30 s, complete buckets only (the last partial one would read as a drop).
const BUCKET_S = 30;
const buckets = {};
for (const r of requests) {
  const b = Math.floor(r.t / BUCKET_S);
  if ((b + 1) * BUCKET_S > wall) continue;
  const k = r.code === 'OK' ? 'OK' : r.expected ? 'expected error (bad input)' : `unexpected ${r.code}`;
  (buckets[b] ??= {})[k] = (buckets[b][k] ?? 0) + 1;
}
const byKind = {};
for (const r of requests) (byKind[r.kind] ??= []).push(r.code);
const result = {
  started_at: started.toISOString(),
  finished_at: new Date().toISOString(),
  command: `node bench/soak.mjs ${process.argv.slice(2).join(' ')}`.trim(),
  machine: machine(),
  loadavg_end: loadAverage(),
  minutes,
  wall_s: round(wall),
  model_dir: path.relative(REPO, modelDir),
  candidate_dir: candidateDir ? path.relative(REPO, candidateDir) : null,
  concurrency,
  bad_share: badShare,
  requests: requests.length,
  codes: countBy(requests.map((r) => r.code)),
  codes_by_kind: Object.fromEntries(Object.entries(byKind).map(([k, v]) => [k, countBy(v)])),
  unexpected: requests.filter((r) => !r.expected).slice(0, 50),
  unexpected_count: requests.filter((r) => !r.expected).length,
  outside_table: requests.filter((r) => !r.table).length,
  versions_served: countBy(requests.filter((r) => r.version).map((r) => r.version)),
  rollout_events: events,
  exit_codes: exitCodes,
  rss_trend: trend,
  memory_limit_mb: 512,
  answers_per_bucket: { bucket_s: BUCKET_S, buckets },
};
const outDir = path.join(REPO, 'bench', 'results');
const stamp = started.toISOString().replace(/[:.]/g, '-').slice(0, 19);
const short = minutes < 20 ? '-short' : '';
writeFileSync(path.join(outDir, `soak-${stamp}${short}.json`), JSON.stringify({ ...result, samples }, null, 1));
console.log(JSON.stringify(result, null, 2));

// ---- plot --------------------------------------------------------------------------------------
await plotSoak(result, samples, path.join(REPO, 'docs', `bench-soak-rss${short}.png`), a['no-plot'] === 'true');
process.exit(0);

/** The soak's picture: RSS per process over time, answers per second by kind, rollout phases. */
export async function plotSoak(result, samples, file, skip = false) {
  const roles = [...new Set(samples.flatMap((x) => Object.keys(x).filter((k) => k !== 't')))];
  const series = roles.map((r) => ({ name: r, points: samples.filter((x) => x[r] !== undefined).map((x) => [round(x.t / 60, 2), x[r]]) }));
  const { bucket_s: bs, buckets } = result.answers_per_bucket;
  const kinds = [...new Set(Object.values(buckets).flatMap((m) => Object.keys(m)))];
  const rateSeries = kinds.map((k) => ({ name: `${k} /s`, points: Object.entries(buckets).map(([b, m]) => [Number(b), m]).sort((x, y) => x[0] - y[0]).map(([b, m]) => [round((b * bs + bs / 2) / 60, 2), round((m[k] ?? 0) / bs, 2)]) }));
  const marks = result.rollout_events.filter((e) => !e.what.startsWith('published')).map((e) => `${round(e.t / 60, 1)} min ${e.what}`).join('; ');
  const ticks = Array.from({ length: Math.floor(result.minutes / 2) + 1 }, (_, i) => i * 2);
  const svg = chartSvg({
    title: `segserve soak: ${result.minutes} min, ${result.model_dir}${result.candidate_dir ? ` → canary ${result.candidate_dir}` : ''}, ${result.concurrency} clients, ${result.bad_share * 100} % bad inputs`,
    columns: 1,
    panelWidth: 1100,
    panelHeight: 380,
    panels: [
      { title: 'RSS per process', xLabel: 'minutes', yLabel: 'RSS MB', series, hline: { y: 0.85 * 512, label: '85 % of the 512 MiB pod limit' }, xTicks: ticks },
      { title: `answers per second (${bs} s buckets)`, xLabel: 'minutes', yLabel: 'requests / s', series: rateSeries, xTicks: ticks },
    ],
    footer: `rollout: ${marks || 'none'} — ${result.started_at.slice(0, 16)}, load average at end ${result.loadavg_end[0]}`,
  });
  if (skip) return;
  await writePng(svg, file);
  console.log(`plot: ${path.relative(REPO, file)}`);
}
