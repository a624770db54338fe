// Promotion decisions on a busy machine (issue 12): with both cores kept busy by CPU burners
// started and stopped here, `segserve stack` serving facade-ads v2, and per repeat (interleaved):
//   v3 claimed with `segserve eval --against v2` (ratios)      → expected promoted (Succeeded), then rolled back
//   v4 (model.json claims)                                     → expected rejected, limit_exceeded
//   v5 (model.json claims)                                     → expected rejected, worse_than_stable
//   v4 with its mIoU inflated to 0.70                          → expected rejected, claim_not_reproduced
// Everything goes through the real CLI, NATS, promoter, verifier and canary (local driver), under
// the bundled policy as it ships: with no live traffic the canary's and the bake's holds replay
// the golden set, as in production, so v3's row is the wall time of a whole verification, canary
// and bake on a busy machine. `--quick-canary` shortens the canary (one 50 % step, 10 s windows,
// 20 requests, 10 s bake) to try the bench out; its outcomes are not the policy's (a 10 s bake
// on a saturated machine gathers too few requests for a decisive check: no_evidence).
//
//   node bench/promotion.mjs [--repeats 5] [--burners 2] [--quick-canary] [--out file.json]
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parse as parseYaml, stringify as toYaml } from 'yaml';
import { args } from './lib/args.mjs';
import { REPO, SEGSERVE_BIN, baseEnv, launch, loadAverage, machine } from './lib/procs.mjs';

const a = args(process.argv.slice(2));
const repeats = Number(a.repeats ?? 5);
const burners = Number(a.burners ?? 2);
const MODELS = path.join(REPO, 'models', 'facade-ads');
const GOLDEN = path.join(MODELS, 'golden'); // v2–v5 were measured on it (their model.json names its digest)

/** Runs `segserve …`; resolves {code, out}. */
function segserve(argv, env) {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [SEGSERVE_BIN, ...argv], { cwd: REPO, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d) => (out += d));
    p.stderr.on('data', (d) => (out += d));
    p.once('exit', (code) => resolve({ code, out }));
  });
}

const dir = await mkdtemp(path.join(os.tmpdir(), 'segserve-bench-promotion-'));
let policyFile = path.join(REPO, 'services', 'promoter', 'policies', 'facade-ads.yaml');
if (a['quick-canary']) {
  const policy = parseYaml(await readFile(policyFile, 'utf8'));
  policy.canary = { ...policy.canary, steps: [50], interval: '10s', min_requests: 20, bake: '10s' };
  policyFile = path.join(dir, 'facade-ads.yaml');
  await writeFile(policyFile, toYaml(policy));
}

const command = `node bench/promotion.mjs ${process.argv.slice(2).join(' ')}`.trim();
console.log(`${command}\n  ${JSON.stringify(machine())}\n  load average before ${loadAverage().join(' ')}`);
const burn = Array.from({ length: burners }, () => spawn(process.execPath, ['-e', 'for (;;) {}'], { stdio: 'ignore' }));
const port = (n) => String(20000 + Math.floor(Math.random() * 20000) + n);
const ports = { nats: port(0), http: port(1), grpc: port(2), metrics: port(3) };
const stack = await launch(process.execPath, [SEGSERVE_BIN, 'stack', '--model', path.join(MODELS, '2'), '--policy', policyFile, '--no-prometheus', '--nats-port', ports.nats, '--http-port', ports.http, '--grpc-port', ports.grpc, '--metrics-port', ports.metrics], {
  env: baseEnv(),
  name: 'stack',
  ready: (_o, line) => line.includes('segserve stack is running'),
  timeoutMs: 600_000,
});
const seedFile = /--seed-file (\S+)/.exec(stack.output())?.[1];
const env = { ...baseEnv(), SEGSERVE_NATS_URL: `nats://127.0.0.1:${ports.nats}` };
const runId = Date.now().toString(36);
const rows = [];

async function decide(label, expected, publishArgs, id) {
  const started = performance.now();
  const published = await segserve(['publish', ...publishArgs, '--seed-file', seedFile, '--id', id], env);
  if (published.code !== 0) throw new Error(`publish ${label}: ${published.out}`);
  const watched = await segserve(['rollout', 'watch', 'facade-ads', '--until-done', '--experiment', id, '--timeout', '20m'], env);
  const decisions = JSON.parse((await segserve(['decisions', 'facade-ads', '--json'], env)).out);
  const d = decisions.find((x) => x.experiment_id === id) ?? {};
  const row = { label, expected, status: d.status, reason_code: d.reason_code, reason: d.reason, watch_exit: watched.code, seconds: Math.round((performance.now() - started) / 100) / 10, load: loadAverage() };
  row.ok = expected === 'promoted' ? row.status === 'promoted' : row.reason_code === expected;
  rows.push(row);
  console.log(`  ${label.padEnd(14)} expected ${expected.padEnd(22)} → ${String(row.status).padEnd(10)} ${String(row.reason_code).padEnd(22)} ${row.seconds} s  load ${row.load.join(' ')}`);
  if (!row.ok) console.log(`    ${row.reason}`);
  return row;
}

try {
  const v4 = JSON.parse(await readFile(path.join(MODELS, '4', 'model.json'), 'utf8'));
  const inflated = path.join(dir, 'v4-inflated.json');
  await writeFile(inflated, JSON.stringify({ metrics: { ...v4.metrics, miou: 0.7 } }));
  for (let r = 1; r <= repeats; r++) {
    console.log(`repeat ${r}/${repeats}`);
    const claims = path.join(dir, `v3-${r}.json`);
    const evaluated = await segserve(['eval', '--model', path.join(MODELS, '3'), '--against', path.join(MODELS, '2'), '--golden', GOLDEN, '--out', claims], env);
    if (evaluated.code !== 0) throw new Error(`eval --against: ${evaluated.out}`);
    const v3 = await decide('v3 (ratios)', 'promoted', ['--model', path.join(MODELS, '3'), '--result', claims], `bench-${runId}-v3-${r}`);
    if (v3.status === 'promoted') {
      const back = await segserve(['rollback', 'facade-ads', '--reason', 'bench: back to v2'], env);
      if (back.code !== 0) throw new Error(`rollback: ${back.out}`);
    }
    await decide('v4', 'limit_exceeded', ['--model', path.join(MODELS, '4')], `bench-${runId}-v4-${r}`);
    await decide('v5', 'worse_than_stable', ['--model', path.join(MODELS, '5')], `bench-${runId}-v5-${r}`);
    await decide('v4 inflated', 'claim_not_reproduced', ['--model', path.join(MODELS, '4'), '--result', inflated], `bench-${runId}-v4i-${r}`);
  }
} finally {
  await stack.stop(60_000);
  for (const b of burn) b.kill('SIGKILL');
}
const byLabel = {};
for (const r of rows) (byLabel[r.label] ??= []).push(r);
console.log(`\n| candidate | expected | as expected | seconds (median) |\n|---|---|---|---|`);
for (const [label, rs] of Object.entries(byLabel)) {
  const secs = rs.map((r) => r.seconds).sort((x, y) => x - y);
  console.log(`| ${label} | ${rs[0].expected} | ${rs.filter((r) => r.ok).length}/${rs.length} | ${secs[Math.floor(secs.length / 2)]} |`);
}
console.log(`load average after ${loadAverage().join(' ')}`);
if (a.out) await writeFile(a.out, JSON.stringify({ command, machine: machine(), burners, rows }, null, 2));
