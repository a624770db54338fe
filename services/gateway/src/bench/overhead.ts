// The gateway's overhead: REST through the gateway versus gRPC straight to inference, p50/p95
// latency and throughput at concurrency 1 and 10, on the default model (or --model <dir>).
//   node services/gateway/dist/bench/overhead.js [--model <dir>] [--image <file>] [--requests <n>]
// Starts its own inference and gateway processes on loopback and stops them afterwards.
import * as grpc from '@grpc/grpc-js';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { DEFAULT_MAX_MESSAGE_BYTES, loadProtos, parseStartupLine, type SegmentResponse__Output, type StartupLine, type StartupService } from '@segserve/proto';
import { chooseDefaultModel, REPO_ROOT, sampleImage } from '../start.js';

const BIN = path.join(REPO_ROOT, 'packages', 'cli', 'dist', 'bin.js');

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : undefined;
}

function launch<S extends StartupService>(args: string[], env: Record<string, string>, service: S): Promise<{ proc: ChildProcess; line: StartupLine<S> }> {
  const proc = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    proc.once('exit', (code) => reject(new Error(`${args[0] ?? ''} exited with ${String(code)}`)));
    createInterface({ input: proc.stdout! }).on('line', (l) => {
      const line = parseStartupLine(service, l);
      if (line) resolve({ proc, line });
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

interface Sample {
  readonly ms: number;
  readonly ok: boolean;
  /** REST only: time inside the gateway not spent waiting for the upstream (Server-Timing). */
  readonly gatewayMs?: number;
}

interface Result {
  readonly n: number;
  readonly p50: number;
  readonly p95: number;
  readonly rps: number;
  readonly errors: number;
  readonly gatewayP50: number | undefined;
}

const quantile = (values: number[], q: number): number => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN;
};

/** Runs `n` calls of `one` with `concurrency` workers; returns the samples and the wall time. */
async function block(n: number, concurrency: number, one: () => Promise<Omit<Sample, 'ms'>>): Promise<{ samples: Sample[]; seconds: number }> {
  const samples: Sample[] = [];
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < n) {
        next++;
        const t = performance.now();
        const r = await one();
        samples.push({ ...r, ms: performance.now() - t });
      }
    }),
  );
  return { samples, seconds: (performance.now() - started) / 1000 };
}

/**
 * The machine is shared and its load drifts: both paths run in alternating rounds (ABBA…), so
 * each sees the same background; samples and times add up over the rounds.
 */
async function compare(n: number, concurrency: number, rounds: number, paths: ReadonlyArray<() => Promise<Omit<Sample, 'ms'>>>): Promise<Result[]> {
  const acc = paths.map(() => ({ samples: [] as Sample[], seconds: 0 }));
  const per = Math.max(1, Math.round(n / rounds));
  for (let r = 0; r < rounds; r++) {
    const order = r % 2 === 0 ? paths.map((_, i) => i) : paths.map((_, i) => paths.length - 1 - i);
    for (const i of order) {
      const b = await block(per, concurrency, paths[i]!);
      acc[i]!.samples.push(...b.samples);
      acc[i]!.seconds += b.seconds;
    }
  }
  return acc.map(({ samples, seconds }) => {
    const gateway = samples.map((s) => s.gatewayMs).filter((v): v is number => v !== undefined);
    return {
      n: samples.length,
      p50: quantile(samples.map((s) => s.ms), 0.5),
      p95: quantile(samples.map((s) => s.ms), 0.95),
      rps: samples.length / seconds,
      errors: samples.filter((s) => !s.ok).length,
      gatewayP50: gateway.length > 0 ? quantile(gateway, 0.5) : undefined,
    };
  });
}

async function main(): Promise<void> {
  const model = arg('--model') ? { ...chooseDefaultModel(), dir: path.resolve(arg('--model') ?? ''), note: 'from --model' } : chooseDefaultModel();
  const manifest = JSON.parse(readFileSync(path.join(model.dir, 'model.json'), 'utf8')) as { name: string; version: string };
  const imagePath = arg('--image') ?? sampleImage(model);
  if (!imagePath) throw new Error('no image: pass --image <file>');
  const image = readFileSync(imagePath);
  const requests = Number(arg('--requests') ?? 0);

  const inference = await launch(['inference', '--model', model.dir], { SEGSERVE_HOST: '127.0.0.1', SEGSERVE_GRPC_PORT: '0', SEGSERVE_METRICS_PORT: '0' }, 'inference');
  const grpcPort = inference.line.grpc_port;
  const gateway = await launch(['gateway'], { SEGSERVE_HOST: '127.0.0.1', SEGSERVE_HTTP_PORT: '0', SEGSERVE_GRPC_PORT: '0', SEGSERVE_UPSTREAMS: `${manifest.name}=ipv4:127.0.0.1:${grpcPort}`, SEGSERVE_LOG_LEVEL: 'warn' }, 'gateway').catch(async (err: unknown) => {
    await stop(inference.proc);
    throw err;
  });
  const httpPort = gateway.line.http_port;
  const options = { 'grpc.max_send_message_length': DEFAULT_MAX_MESSAGE_BYTES, 'grpc.max_receive_message_length': DEFAULT_MAX_MESSAGE_BYTES };
  const client = new (loadProtos().segmenter.segserve.v1.Segmenter)(`127.0.0.1:${grpcPort}`, grpc.credentials.createInsecure(), options);

  const direct = (): Promise<Omit<Sample, 'ms'>> =>
    new Promise((resolve) => {
      client.Segment({ model: manifest.name, image, mask_format: 'PNG' }, { deadline: Date.now() + 120_000 }, (err: grpc.ServiceError | null, res?: SegmentResponse__Output) => resolve({ ok: !err && res !== undefined }));
    });
  const url = `http://127.0.0.1:${httpPort}/v1/models/${manifest.name}/segment`;
  const rest = async (): Promise<Omit<Sample, 'ms'>> => {
    const form = new FormData();
    form.append('image', new Blob([new Uint8Array(image)]), path.basename(imagePath));
    const res = await fetch(url, { method: 'POST', body: form });
    await res.arrayBuffer();
    // "upstream;dur=41.2, total;dur=43.0": the gateway's own share of the request.
    const timing = Object.fromEntries([...(res.headers.get('server-timing') ?? '').matchAll(/(\w+);dur=([\d.]+)/g)].map((m) => [m[1], Number(m[2])]));
    const gatewayMs = timing['total'] !== undefined && timing['upstream'] !== undefined ? timing['total'] - timing['upstream'] : undefined;
    return { ok: res.ok, ...(gatewayMs !== undefined ? { gatewayMs } : {}) };
  };

  try {
    // Warm-up: first runs pay for JIT, sessions and connections.
    for (let i = 0; i < 5; i++) await Promise.all([direct(), rest()]);
    const probe = await block(3, 1, direct);
    const perImageMs = quantile(probe.samples.map((x) => x.ms), 0.5);
    process.stdout.write(`model ${manifest.name} v${manifest.version} (${model.note}), image ${path.basename(imagePath)} (${image.length} bytes), ~${perImageMs.toFixed(1)} ms per direct call\n\n`);
    process.stdout.write('| path | concurrency | requests | p50 ms | p95 ms | req/s | errors | in-gateway p50 ms |\n|---|---|---|---|---|---|---|---|\n');
    for (const concurrency of [1, 10]) {
      // About 20 s of work per path and concurrency on a 2-core machine, at least 40 requests.
      const n = requests > 0 ? requests : Math.max(40, Math.min(1000, Math.round(20_000 / Math.max(perImageMs, 1))));
      const [d, r] = await compare(n, concurrency, 4, [direct, rest]);
      for (const [name, x] of [
        ['gRPC → inference', d],
        ['REST → gateway → inference', r],
      ] as const) {
        const g = x?.gatewayP50 === undefined ? '' : x.gatewayP50.toFixed(1);
        process.stdout.write(`| ${name} | ${concurrency} | ${x?.n ?? 0} | ${x?.p50.toFixed(1)} | ${x?.p95.toFixed(1)} | ${x?.rps.toFixed(1)} | ${x?.errors ?? 0} | ${g} |\n`);
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
