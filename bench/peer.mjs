// segserve against the study's own stack: Flask + PyTorch (bench/peers/flask_pspnet.py) serving
// the same network with the same weights, both behind the study's REST contract
// (POST /segmentator-api, multipart field `image`, PNG mask back). Interleaved cells at each
// concurrency; throughput, latency and the peak RSS of every process (segserve: inference +
// gateway; peer: the one Python process). First a check that both answer the same mask.
//
//   node bench/peer.mjs [--model models/facade-ads-full/2] [--concurrency 1,10] [--repeats 3]
import path from 'node:path';
import sharp from 'sharp';
import { closedLoop } from './lib/load.mjs';
import { httpAgent, multipartBody, postRaw } from './lib/clients.mjs';
import { loadImages } from './lib/images.mjs';
import { MemoryWatch, REPO, baseEnv, cpuSeconds, launch, loadAverage, memory, startGateway, startInference } from './lib/procs.mjs';
import { median, round } from './lib/stats.mjs';

const PYTHON = '/usr/bin/python3'; // Debian's: python3-torch, python3-flask

export function startPeer(modelDir, threads = 2) {
  return launch(PYTHON, [path.join(REPO, 'bench', 'peers', 'flask_pspnet.py'), '--model', modelDir, '--port', '0', '--threads', String(threads)], {
    name: 'flask-pytorch peer',
    // The study's stack as it ran: glibc's own malloc settings. (With segserve's fixed mmap
    // threshold PyTorch measured 2.00 img/s at c=10 against 2.45 with glibc's defaults.)
    env: baseEnv({ MALLOC_ARENA_MAX: undefined, MALLOC_MMAP_THRESHOLD_: undefined }),
    ready: (o) => o?.msg === 'listening',
  });
}

async function maskAgreement(a, b) {
  const [x, y] = await Promise.all([a, b].map((png) => sharp(png).extractChannel(0).raw().toBuffer({ resolveWithObject: true })));
  if (x.info.width !== y.info.width || x.info.height !== y.info.height) return 0;
  let same = 0;
  for (let i = 0; i < x.data.length; i++) if (x.data[i] === y.data[i]) same++;
  return same / x.data.length;
}

export async function runPeer({ modelDir, images, concurrencies = [1, 10], repeats = 3, cellSeconds = 20, log = console.log }) {
  const inf = await startInference(modelDir);
  const gw = await startGateway(`${inf.line.model}=ipv4:127.0.0.1:${inf.line.grpc_port}`);
  const peer = await startPeer(modelDir);
  const urls = { segserve: `http://127.0.0.1:${gw.line.http_port}/segmentator-api`, peer: `http://127.0.0.1:${peer.line.port}/segmentator-api` };
  const pids = { segserve: { inference: inf.pid, gateway: gw.pid }, peer: { peer: peer.pid } };
  const bodies = images.map((i) => multipartBody(i.bytes));
  const cells = [];
  let agreement;
  try {
    const agent = httpAgent(2);
    const a = await postRaw(urls.segserve, bodies[0], { agent });
    const b = await postRaw(urls.peer, bodies[0], { agent });
    agent.destroy();
    if (a.code !== 'OK' || b.code !== 'OK') throw new Error(`peer check: segserve ${a.code}, peer ${b.code}`);
    agreement = await maskAgreement(a.body, b.body);
    log(`  same mask from both: ${(agreement * 100).toFixed(2)} % of pixels agree; peer torch ${peer.line.torch}, ${peer.line.threads} threads`);
    let turn = 0;
    for (let r = 0; r < repeats; r++) {
      for (const c of concurrencies) {
        const order = turn++ % 2 ? ['peer', 'segserve'] : ['segserve', 'peer'];
        for (const side of order) {
          const agentC = httpAgent(c);
          const watch = new MemoryWatch(pids[side], 100).start();
          const cpu0 = Object.values(pids[side]).map(cpuSeconds);
          const load = loadAverage();
          const s = await closedLoop({ concurrency: c, durationS: cellSeconds, send: (i) => postRaw(urls[side], bodies[i % bodies.length], { agent: agentC }) });
          const mem = watch.stop();
          const cpu = Object.values(pids[side]).map((pid, i) => cpuSeconds(pid) - cpu0[i]).reduce((x, y) => x + y, 0);
          agentC.destroy();
          const lifetime = Object.fromEntries(Object.entries(pids[side]).map(([k, pid]) => [k, round(memory(pid)?.hwmMb ?? NaN)]));
          const cell = { side, repeat: r, ...s, loadavg: load, cell_peak_rss_mb: Object.fromEntries(Object.entries(mem).map(([k, m]) => [k, round(m.peakRssMb)])), lifetime_peak_rss_mb: lifetime, cpu_ms_per_image: s.ok ? Math.round((cpu * 1000) / s.ok) : null };
          cells.push(cell);
          log(`  r${r} c${c} ${side.padEnd(8)} ${s.throughput.toFixed(2)} img/s  p50 ${Math.round(s.p50_ms)} ms  p95 ${Math.round(s.p95_ms)} ms  ${JSON.stringify(s.codes)}  peak RSS ${JSON.stringify(cell.cell_peak_rss_mb)}  cpu ${cell.cpu_ms_per_image} ms/img  load ${load[0]}`);
        }
      }
    }
  } finally {
    await peer.stop();
    await gw.stop();
    await inf.stop();
  }
  const summary = {};
  for (const c of concurrencies) {
    const pick = (side) => cells.filter((x) => x.side === side && x.concurrency === c);
    const sum = (o) => Object.values(o).reduce((a, b) => a + b, 0);
    const agg = (side) => ({
      throughput: round(median(pick(side).map((x) => x.throughput)), 3),
      p50_ms: round(median(pick(side).map((x) => x.p50_ms))),
      p95_ms: round(median(pick(side).map((x) => x.p95_ms))),
      peak_rss_mb: Math.max(...pick(side).map((x) => sum(x.cell_peak_rss_mb))),
      peak_rss_by_process_mb: Object.fromEntries(Object.keys(pids[side]).map((k) => [k, Math.max(...pick(side).map((x) => x.cell_peak_rss_mb[k]))])),
      cpu_ms_per_image: round(median(pick(side).map((x) => x.cpu_ms_per_image)), 0),
      codes: pick(side).reduce((acc, x) => {
        for (const [k, v] of Object.entries(x.codes)) acc[k] = (acc[k] ?? 0) + v;
        return acc;
      }, {}),
    });
    const s = agg('segserve');
    const p = agg('peer');
    const ratios = [];
    for (let r = 0; r < repeats; r++) {
      const a = cells.find((x) => x.side === 'segserve' && x.concurrency === c && x.repeat === r);
      const b = cells.find((x) => x.side === 'peer' && x.concurrency === c && x.repeat === r);
      if (a && b && b.throughput > 0) ratios.push(a.throughput / b.throughput);
    }
    summary[c] = { segserve: s, peer: p, throughput_ratio: round(median(ratios), 2), memory_ratio: round(s.peak_rss_mb / p.peak_rss_mb, 2) };
  }
  return { model_dir: path.relative(REPO, modelDir), mask_agreement: agreement, peer: { torch: peer.line.torch, threads: peer.line.threads, load_seconds: peer.line.load_seconds, server: 'Flask development server, threaded=True' }, cells, summary };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const arg = (name, d) => {
    const i = process.argv.indexOf(`--${name}`);
    return i > 0 ? process.argv[i + 1] : d;
  };
  const out = await runPeer({
    modelDir: path.resolve(REPO, arg('model', 'models/facade-ads-full/2')),
    images: loadImages(),
    concurrencies: arg('concurrency', '1,10').split(',').map(Number),
    repeats: Number(arg('repeats', '3')),
    cellSeconds: Number(arg('seconds', '20')),
  });
  console.log(JSON.stringify({ ...out, cells: undefined }, null, 2));
}
