// The gateway's overhead: REST through the gateway versus gRPC straight to inference, p50/p95
// latency and throughput at concurrency 1 and 10, on the default model (or --model <dir>).
//   node services/gateway/dist/bench/overhead.js [--model <dir>] [--image <file>] [--requests <n>]
// Starts its own inference and gateway processes on loopback and stops them afterwards.
import * as grpc from '@grpc/grpc-js';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { DEFAULT_MAX_MESSAGE_BYTES, loadProtos, type SegmentResponse__Output } from '@segserve/proto';
import { chooseDefaultModel, REPO_ROOT, sampleImage } from '../start.js';

const BIN = path.join(REPO_ROOT, 'packages', 'cli', 'dist', 'bin.js');

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : undefined;
}

function launch(args: string[], env: Record<string, string>, readyMsg: string): Promise<{ proc: ChildProcess; line: Record<string, unknown> }> {
  const proc = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    proc.once('exit', (code) => reject(new Error(`${args[0] ?? ''} exited with ${String(code)}`)));
    createInterface({ input: proc.stdout! }).on('line', (l) => {
      if (!l.includes(`"msg":"${readyMsg}"`)) return;
      resolve({ proc, line: JSON.parse(l) as Record<string, unknown> });
    });
  });
}

async function stop(proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null) return;
  proc.removeAllListeners('exit');
  const done = new Promise((r) => proc.once('exit', r));
  proc.kill('SIGTERM');
  await done;
}

interface Result {
  readonly p50: number;
  readonly p95: number;
  readonly rps: number;
  readonly errors: number;
}

const quantile = (sorted: number[], q: number): number => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN;

async function measure(n: number, concurrency: number, one: () => Promise<boolean>): Promise<Result> {
  const latencies: number[] = [];
  let errors = 0;
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < n) {
        next++;
        const t = performance.now();
        if (!(await one())) errors++;
        latencies.push(performance.now() - t);
      }
    }),
  );
  const wall = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  return { p50: quantile(latencies, 0.5), p95: quantile(latencies, 0.95), rps: n / wall, errors };
}

async function main(): Promise<void> {
  const model = arg('--model') ? { ...chooseDefaultModel(), dir: path.resolve(arg('--model') ?? ''), note: 'from --model' } : chooseDefaultModel();
  const manifest = JSON.parse(readFileSync(path.join(model.dir, 'model.json'), 'utf8')) as { name: string; version: string };
  const imagePath = arg('--image') ?? sampleImage(model);
  if (!imagePath) throw new Error('no image: pass --image <file>');
  const image = readFileSync(imagePath);
  const requests = Number(arg('--requests') ?? 0);

  const inference = await launch(['inference', '--model', model.dir], { SEGSERVE_HOST: '127.0.0.1', SEGSERVE_GRPC_PORT: '0', SEGSERVE_METRICS_PORT: '0' }, 'serving');
  const grpcPort = Number(inference.line['grpc_port']);
  const gateway = await launch(['gateway'], { SEGSERVE_HOST: '127.0.0.1', SEGSERVE_HTTP_PORT: '0', SEGSERVE_GRPC_PORT: '0', SEGSERVE_UPSTREAMS: `${manifest.name}=ipv4:127.0.0.1:${grpcPort}`, SEGSERVE_LOG_LEVEL: 'warn' }, 'listening').catch(async (err: unknown) => {
    await stop(inference.proc);
    throw err;
  });
  const httpPort = Number(gateway.line['http_port']);
  const options = { 'grpc.max_send_message_length': DEFAULT_MAX_MESSAGE_BYTES, 'grpc.max_receive_message_length': DEFAULT_MAX_MESSAGE_BYTES };
  const client = new (loadProtos().segmenter.segserve.v1.Segmenter)(`127.0.0.1:${grpcPort}`, grpc.credentials.createInsecure(), options);

  const direct = (): Promise<boolean> =>
    new Promise((resolve) => {
      client.Segment({ model: manifest.name, image, mask_format: 'PNG' }, { deadline: Date.now() + 120_000 }, (err: grpc.ServiceError | null, res?: SegmentResponse__Output) => resolve(!err && res !== undefined));
    });
  const url = `http://127.0.0.1:${httpPort}/v1/models/${manifest.name}/segment`;
  const rest = async (): Promise<boolean> => {
    const form = new FormData();
    form.append('image', new Blob([new Uint8Array(image)]), path.basename(imagePath));
    const res = await fetch(url, { method: 'POST', body: form });
    await res.arrayBuffer();
    return res.ok;
  };

  try {
    // Warm-up: first runs pay for JIT, sessions and connections.
    for (let i = 0; i < 5; i++) await Promise.all([direct(), rest()]);
    const probe = await measure(3, 1, direct);
    const perImageMs = probe.p50;
    process.stdout.write(`model ${manifest.name} v${manifest.version} (${model.note}), image ${path.basename(imagePath)} (${image.length} bytes), ~${perImageMs.toFixed(1)} ms per direct call\n\n`);
    process.stdout.write('| path | concurrency | requests | p50 ms | p95 ms | req/s | errors |\n|---|---|---|---|---|---|---|\n');
    for (const concurrency of [1, 10]) {
      // About 20 s of work per row on a 2-core machine, at least 20 requests.
      const n = requests > 0 ? requests : Math.max(20, Math.min(1000, Math.round(20_000 / Math.max(perImageMs, 1))));
      for (const [name, fn] of [
        ['gRPC → inference', direct],
        ['REST → gateway → inference', rest],
      ] as const) {
        const r = await measure(n, concurrency, fn);
        process.stdout.write(`| ${name} | ${concurrency} | ${n} | ${r.p50.toFixed(1)} | ${r.p95.toFixed(1)} | ${r.rps.toFixed(1)} | ${r.errors} |\n`);
      }
    }
  } finally {
    client.close();
    await stop(gateway.proc);
    await stop(inference.proc);
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
});
