// Cold start: process start → SERVING (inference) / listening (gateway), and the model load time
// the inference process reports (fetch + verify + session creation + warm-up), repeated and
// interleaved across models. Also the idle RSS right after start.
import path from 'node:path';
import { memory, loadAverage, startGateway, startInference, sleep } from './lib/procs.mjs';
import { median, round } from './lib/stats.mjs';

export async function runColdStart({ modelDirs, repeats = 3, env = {}, log = console.log }) {
  const runs = [];
  for (let r = 0; r < repeats; r++) {
    for (const dir of modelDirs) {
      const load = loadAverage();
      const inf = await startInference(dir, env);
      await sleep(300);
      const m = memory(inf.pid);
      runs.push({ process: 'inference', model: path.relative(process.cwd(), dir), start_to_ready_s: round((inf.readyAt - inf.spawnedAt) / 1000, 3), load_seconds: inf.line.load_seconds, idle_rss_mb: round(m?.rssMb ?? NaN), hwm_mb: round(m?.hwmMb ?? NaN), loadavg: load });
      log(`  cold start ${dir}: ${runs.at(-1).start_to_ready_s} s to SERVING, model load ${inf.line.load_seconds} s, idle RSS ${runs.at(-1).idle_rss_mb} MB (load ${load[0]})`);
      await inf.stop();
    }
    const load = loadAverage();
    const gw = await startGateway('facade-ads=ipv4:127.0.0.1:1');
    const m = memory(gw.pid);
    runs.push({ process: 'gateway', start_to_ready_s: round((gw.readyAt - gw.spawnedAt) / 1000, 3), idle_rss_mb: round(m?.rssMb ?? NaN), loadavg: load });
    log(`  cold start gateway: ${runs.at(-1).start_to_ready_s} s to listening`);
    await gw.stop();
  }
  const groups = {};
  for (const run of runs) (groups[run.model ?? 'gateway'] ??= []).push(run);
  const summary = Object.fromEntries(
    Object.entries(groups).map(([k, rs]) => [k, { start_to_ready_s: round(median(rs.map((x) => x.start_to_ready_s)), 2), load_seconds: round(median(rs.map((x) => x.load_seconds ?? NaN)), 2), idle_rss_mb: round(median(rs.map((x) => x.idle_rss_mb))) }]),
  );
  return { runs, summary };
}
