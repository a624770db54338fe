// The gateway's latency overhead at concurrency 1, measured request by request: the same image
// straight to inference over gRPC, then through the gateway over REST and over gRPC (the order
// rotating), so each triple sees the same machine state and the ratio of medians is not the
// ratio of two noisy runs minutes apart. One inference process, one gateway in front of it.
//
//   node bench/overhead.mjs [--model models/facade-ads-full/2] [--pairs 30]
import path from 'node:path';
import { readFileSync } from 'node:fs';
import { httpAgent, multipartBody, postRaw, segment, segmenterClient } from './lib/clients.mjs';
import { loadImages } from './lib/images.mjs';
import { REPO, loadAverage, startGateway, startInference } from './lib/procs.mjs';
import { median, round } from './lib/stats.mjs';

export async function runOverhead({ modelDir, images, pairs = 30, env = {}, log = console.log }) {
  const model = JSON.parse(readFileSync(path.join(modelDir, 'model.json'), 'utf8')).name;
  const inf = await startInference(modelDir, env);
  const gw = await startGateway(`${model}=ipv4:127.0.0.1:${inf.line.grpc_port}`);
  const direct = segmenterClient(`127.0.0.1:${inf.line.grpc_port}`);
  const viaGw = segmenterClient(`127.0.0.1:${gw.line.grpc_port}`);
  const agent = httpAgent(1);
  const url = `http://127.0.0.1:${gw.line.http_port}/v1/models/${model}/segment`;
  const bodies = images.map((i) => multipartBody(i.bytes));
  const load = loadAverage();
  try {
    const one = {
      grpc: (i) => segment(direct, { model, image: images[i % images.length].bytes, mask_format: 'PNG' }),
      rest: (i) => postRaw(url, bodies[i % bodies.length], { agent }),
      'gateway-grpc': (i) => segment(viaGw, { model, image: images[i % images.length].bytes, mask_format: 'PNG' }),
    };
    const names = Object.keys(one);
    for (let i = 0; i < 3; i++) for (const n of names) await one[n](i); // warm-up
    const ms = Object.fromEntries(names.map((n) => [n, []]));
    for (let i = 0; i < pairs; i++) {
      for (let k = 0; k < names.length; k++) {
        const n = names[(i + k) % names.length];
        const o = await one[n](i);
        ms[n].push(o.code === 'OK' ? o.ms : NaN);
      }
    }
    const ratio = (n) => round(median(ms[n].map((v, i) => v / ms.grpc[i])), 3);
    const out = {
      model_dir: path.relative(REPO, modelDir),
      pairs,
      loadavg: load,
      p50_ms: Object.fromEntries(names.map((n) => [n, round(median(ms[n]))])),
      ratio_to_direct: { rest: ratio('rest'), 'gateway-grpc': ratio('gateway-grpc') },
      added_ms_median: { rest: round(median(ms.rest.map((v, i) => v - ms.grpc[i]))), 'gateway-grpc': round(median(ms['gateway-grpc'].map((v, i) => v - ms.grpc[i]))) },
    };
    log(`  overhead ${out.model_dir}: p50 ${JSON.stringify(out.p50_ms)}; per-request ratio to direct ${JSON.stringify(out.ratio_to_direct)}; added ${JSON.stringify(out.added_ms_median)} ms (load ${load[0]})`);
    return out;
  } finally {
    direct.close();
    viaGw.close();
    agent.destroy();
    await gw.stop();
    await inf.stop();
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const arg = (name, d) => {
    const i = process.argv.indexOf(`--${name}`);
    return i > 0 ? process.argv[i + 1] : d;
  };
  const out = await runOverhead({ modelDir: path.resolve(REPO, arg('model', 'models/facade-ads-full/2')), images: loadImages(), pairs: Number(arg('pairs', '30')) });
  console.log(JSON.stringify(out, null, 2));
}
