// The gateway's overhead under load: REST through the gateway versus gRPC straight to inference,
// p50/p95 latency and throughput at concurrency 1 and 10, on one model (default facade-ads/2).
// Both paths run in alternating rounds (ABBA…) so that each sees the same background load of a
// shared machine; bench/overhead.mjs measures the c=1 overhead request by request instead.
//
//   node bench/overhead-load.mjs [--model <dir>] [--image <file>] [--requests <n>]
import path from 'node:path';
import { readFileSync } from 'node:fs';
import { httpAgent, multipartBody, postRaw, segment, segmenterClient } from './lib/clients.mjs';
import { loadImages } from './lib/images.mjs';
import { REPO, defaultModelDir, loadAverage, startGateway, startInference } from './lib/procs.mjs';

function arg(name, fallback) {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : fallback;
}

/** Nearest-rank quantile, q in [0, 1]. */
const quantile = (values, q) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN;
};

/** Runs `n` calls of `one` with `concurrency` workers; returns the samples and the wall time. */
async function block(n, concurrency, one) {
  const samples = [];
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < n) {
        next++;
        samples.push(await one());
      }
    }),
  );
  return { samples, seconds: (performance.now() - started) / 1000 };
}

/** Both paths in alternating rounds; samples and times add up over the rounds. */
async function compare(n, concurrency, rounds, paths) {
  const acc = paths.map(() => ({ samples: [], seconds: 0 }));
  const per = Math.max(1, Math.round(n / rounds));
  for (let r = 0; r < rounds; r++) {
    const order = r % 2 === 0 ? paths.map((_, i) => i) : paths.map((_, i) => paths.length - 1 - i);
    for (const i of order) {
      const b = await block(per, concurrency, paths[i]);
      acc[i].samples.push(...b.samples);
      acc[i].seconds += b.seconds;
    }
  }
  return acc.map(({ samples, seconds }) => {
    const gateway = samples.map((s) => s.gatewayMs).filter((v) => v !== undefined);
    return {
      n: samples.length,
      p50: quantile(samples.map((s) => s.ms), 0.5),
      p95: quantile(samples.map((s) => s.ms), 0.95),
      rps: samples.length / seconds,
      errors: samples.filter((s) => s.code !== 'OK').length,
      gatewayP50: gateway.length > 0 ? quantile(gateway, 0.5) : undefined,
    };
  });
}

const modelDir = path.resolve(arg('--model', defaultModelDir()));
const manifest = JSON.parse(readFileSync(path.join(modelDir, 'model.json'), 'utf8'));
const imageFile = arg('--image', loadImages()[0]?.file);
if (!imageFile) throw new Error('no image: pass --image <file>');
const image = readFileSync(imageFile);
const requests = Number(arg('--requests', '0'));

const inference = await startInference(modelDir);
const gateway = await startGateway(`${manifest.name}=ipv4:127.0.0.1:${inference.line.grpc_port}`, { SEGSERVE_LOG_LEVEL: 'warn' }).catch(async (err) => {
  await inference.stop();
  throw err;
});
const client = segmenterClient(`127.0.0.1:${inference.line.grpc_port}`);
const agent = httpAgent(10);
const upload = multipartBody(image, { filename: path.basename(imageFile) });
const url = `http://127.0.0.1:${gateway.line.http_port}/v1/models/${manifest.name}/segment`;

const direct = () => segment(client, { model: manifest.name, image, mask_format: 'PNG' });
const rest = async () => {
  const r = await postRaw(url, upload, { agent });
  // Server-Timing "upstream;dur=41.2, total;dur=43.0": the gateway's own share of the request.
  const timing = Object.fromEntries([...(r.serverTiming ?? '').matchAll(/(\w+);dur=([\d.]+)/g)].map((m) => [m[1], Number(m[2])]));
  return timing.total !== undefined && timing.upstream !== undefined ? { ...r, gatewayMs: timing.total - timing.upstream } : r;
};

try {
  // Warm-up: first runs pay for JIT, sessions and connections.
  for (let i = 0; i < 5; i++) await Promise.all([direct(), rest()]);
  const probe = await block(3, 1, direct);
  const perImageMs = quantile(probe.samples.map((x) => x.ms), 0.5);
  console.log(`model ${manifest.name} v${manifest.version}, image ${path.basename(imageFile)} (${image.length} bytes), ~${perImageMs.toFixed(1)} ms per direct call, load ${loadAverage().join(' ')}\n`);
  console.log('| path | concurrency | requests | p50 ms | p95 ms | req/s | errors | in-gateway p50 ms |\n|---|---|---|---|---|---|---|---|');
  for (const concurrency of [1, 10]) {
    // About 20 s of work per path and concurrency on a 2-core machine, at least 40 requests.
    const n = requests > 0 ? requests : Math.max(40, Math.min(1000, Math.round(20_000 / Math.max(perImageMs, 1))));
    const [d, r] = await compare(n, concurrency, 4, [direct, rest]);
    for (const [name, x] of [
      ['gRPC → inference', d],
      ['REST → gateway → inference', r],
    ]) {
      console.log(`| ${name} | ${concurrency} | ${x.n} | ${x.p50.toFixed(1)} | ${x.p95.toFixed(1)} | ${x.rps.toFixed(1)} | ${x.errors} | ${x.gatewayP50?.toFixed(1) ?? ''} |`);
    }
  }
} finally {
  client.close();
  agent.destroy();
  await gateway.stop();
  await inference.stop();
}
