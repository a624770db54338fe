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
//        [--settings 'default;SEGSERVE_ORT_NICE=10'] [--connections cold,warm]
import { monitorEventLoopDelay } from 'node:perf_hooks';
import path from 'node:path';
import { readFileSync } from 'node:fs';
import { args } from './lib/args.mjs';
import { segmenterClient, segment } from './lib/clients.mjs';
import { loadImages } from './lib/images.mjs';
import { REPO, loadAverage, startInference } from './lib/procs.mjs';
import { percentile, round } from './lib/stats.mjs';

const a = args(process.argv.slice(2));
const modelDir = path.resolve(REPO, a.model ?? 'models/facade-ads-full/2');
const c = Number(a.concurrency ?? 50);
const repeats = Number(a.repeats ?? 3);
const connections = (a.connections ?? 'cold').split(',');
// Settings of the service's own variables, ';'-separated: e.g. 'default;SEGSERVE_ORT_NICE=10'.
const settings = (a.settings ?? 'default').split(';');
const model = JSON.parse(readFileSync(path.join(modelDir, 'model.json'), 'utf8')).name;
const images = loadImages();

const epoch = () => performance.timeOrigin + performance.now();

function ready(client) {
  return new Promise((resolve, reject) => client.waitForReady(Date.now() + 10_000, (err) => (err ? reject(err) : resolve())));
}

/** The server's edge refusals logged since `from` (epoch ms), as epoch ms. */
function serverRefusals(inf, from) {
  const out = [];
  for (const line of inf.output().split('\n')) {
    if (!line.includes('"request rejected"') || !line.includes('"edge"')) continue;
    try {
      const t = Date.parse(JSON.parse(line).time);
      if (t >= from - 1) out.push(t);
    } catch {
      // not a JSON line
    }
  }
  return out.sort((x, y) => x - y);
}

/** `A=1 B=2` → {A: '1', B: '2'}; 'default' → {}. */
const envOf = (setting) => Object.fromEntries(setting.split(' ').filter((kv) => kv.includes('=')).map((kv) => kv.split('=')));

console.log(`burst: ${model} (${path.relative(REPO, modelDir)}), c=${c}, ${repeats} repeats, settings ${settings.join(' | ')}, connection ${connections.join(', ')}, load ${loadAverage().join(' ')}`);
const rows = [];
for (let r = 0; r < repeats; r++) {
  const order = [...settings.slice(r % settings.length), ...settings.slice(0, r % settings.length)];
  for (const setting of order) {
    // A fresh process per setting and repeat, as bench/memory.mjs starts one.
    const inf = await startInference(modelDir, { SEGSERVE_LOG_LEVEL: 'info', ...envOf(setting) });
    const capacity = inf.line.max_concurrency + inf.line.max_queue;
    for (const connection of r % 2 === 0 ? connections : [...connections].reverse()) {
      const client = segmenterClient(`127.0.0.1:${inf.line.grpc_port}`);
      if (connection === 'warm') await ready(client);
      const loop = monitorEventLoopDelay({ resolution: 1 });
      loop.enable();
      const load = loadAverage()[0];
      const start = epoch();
      const calls = Array.from({ length: c }, (_, i) => segment(client, { model, image: images[i % images.length].bytes, mask_format: 'PNG' }).then((o) => ({ ...o, at: epoch() - start })));
      const handedOver = epoch() - start;
      const outcomes = await Promise.all(calls);
      loop.disable();
      client.close();
      const refused = outcomes.filter((o) => o.code === 'OVERLOADED').sort((x, y) => x.ms - y.ms).slice(0, Math.max(0, c - capacity));
      const server = serverRefusals(inf, start).map((t) => t - start);
      const row = {
        setting,
        connection,
        repeat: r,
        load,
        codes: outcomes.reduce((m, o) => ({ ...m, [o.code]: (m[o.code] ?? 0) + 1 }), {}),
        client_send_loop_ms: round(handedOver, 1),
        server_first_refusal_ms: round(server[0] ?? NaN, 1),
        server_last_refusal_ms: round(server.at(-1) ?? NaN, 1),
        refused_p50_ms: round(percentile(refused.map((o) => o.ms), 50), 1),
        refused_p95_ms: round(percentile(refused.map((o) => o.ms), 95), 1),
        refused_max_ms: round(Math.max(...refused.map((o) => o.ms)), 1),
        client_loop_delay_max_ms: round(loop.max / 1e6, 1),
      };
      rows.push(row);
      console.log(`  [${setting}] ${connection} r${r}: refused p50 ${row.refused_p50_ms} p95 ${row.refused_p95_ms} max ${row.refused_max_ms} ms; client send loop ${row.client_send_loop_ms} ms; server refusals at ${row.server_first_refusal_ms}–${row.server_last_refusal_ms} ms; client loop delay max ${row.client_loop_delay_max_ms} ms; ${JSON.stringify(row.codes)} (load ${load})`);
    }
    await inf.stop();
  }
}
console.log(`load ${loadAverage().join(' ')}`);
for (const setting of settings) {
  for (const connection of connections) {
    const p95 = rows.filter((x) => x.setting === setting && x.connection === connection).map((x) => x.refused_p95_ms);
    console.log(`[${setting}] ${connection}: refused p95 per repeat ${p95.join(', ')} ms (median ${round(percentile(p95, 50), 1)})`);
  }
}
