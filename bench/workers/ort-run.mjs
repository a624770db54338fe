// One onnxruntime session with the given settings, `runs` back-to-back runs of one image-like
// input after a warm-up; prints one JSON line: ms per run and this process's memory. A child of
// bench/ort-settings.mjs, so that every setting gets a fresh process (and its own malloc env).
//
//   node bench/workers/ort-run.mjs <modelDir> <arena true|false> <memPattern true|false> <runs> <intra>
import { readFileSync } from 'node:fs';
import path from 'node:path';
import ort from 'onnxruntime-node';

const [modelDir, arena, pattern, runsArg, intraArg] = process.argv.slice(2);
const manifest = JSON.parse(readFileSync(path.join(modelDir, 'model.json'), 'utf8'));
const status = () => {
  const s = readFileSync('/proc/self/status', 'utf8');
  const kb = (k) => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(s)[1]) / 1024;
  return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
};
// System-wide transparent-huge-page counters (this process is most of what faults here during a
// quiet run): how many 2 MiB faults were served, and how many fell back to 4 KiB pages.
const thp = () => Object.fromEntries(readFileSync('/proc/vmstat', 'utf8').split('\n').filter((l) => l.startsWith('thp_fault_')).map((l) => l.split(' ')).map(([k, v]) => [k, Number(v)]));
const before = status();
const session = await ort.InferenceSession.create(path.join(modelDir, 'model.onnx'), {
  executionProviders: ['cpu'], intraOpNumThreads: Number(intraArg ?? 2), interOpNumThreads: 1,
  enableCpuMemArena: arena === 'true', enableMemPattern: pattern === 'true',
  executionMode: 'sequential', graphOptimizationLevel: 'all', logSeverityLevel: 3,
});
const dims = [1, 3, manifest.input.height, manifest.input.width];
const x = new Float32Array(dims.reduce((a, b) => a * b, 1)).map((_, i) => Math.sin(i * 0.001) * 2);
const feeds = { [manifest.input.name]: new ort.Tensor('float32', x, dims) };
await session.run(feeds);
const afterWarmUp = status();
const ms = [];
const cpu0 = process.cpuUsage();
const thp0 = thp();
for (let i = 0; i < Number(runsArg); i++) {
  const t = performance.now();
  await session.run(feeds);
  ms.push(performance.now() - t);
}
const cpu = process.cpuUsage(cpu0);
const thp1 = thp();
const end = status();
process.stdout.write(`${JSON.stringify({ ms, cpu_ms_per_run: (cpu.user + cpu.system) / 1000 / ms.length, sys_ms_per_run: cpu.system / 1000 / ms.length, thp_faults_per_run: (thp1.thp_fault_alloc - thp0.thp_fault_alloc) / ms.length, thp_fallbacks_per_run: (thp1.thp_fault_fallback - thp0.thp_fault_fallback) / ms.length, rss_before_mb: before.rss, rss_after_warmup_mb: afterWarmUp.rss, rss_end_mb: end.rss, peak_mb: end.hwm })}\n`);
await session.release();
