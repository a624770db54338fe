// `segserve start` (what `npm start` runs): one inference process on the bundled default model
// and a gateway in front of it with a static route, both as child processes of this one. Waits
// until the page answers and /readyz is 200, prints how to use it, and on Ctrl-C (SIGINT),
// SIGTERM or SIGHUP stops the gateway first (so it drains), then inference. No NATS involved.
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { parseStartupLine, type StartupLine, type StartupService } from '@segserve/proto';
import { INFERENCE_MALLOC_ENV } from '@segserve/runtime';
import { chooseDefaultModel, describeModel, REPO_ROOT, sampleImage, type ModelChoice } from './models.js';

type Env = Readonly<Record<string, string | undefined>>;

const SEGSERVE_BIN = path.join(REPO_ROOT, 'packages', 'cli', 'dist', 'bin.js');
const GRPC_EXAMPLE = path.join(REPO_ROOT, 'services', 'gateway', 'dist', 'grpc-example.js');

/** Quotes for POSIX shells, so printed commands work with any path. */
export const shellQuote = (s: string): string => (/^[A-Za-z0-9_./:@%+=,-]+$/.test(s) ? s : `'${s.replaceAll("'", `'\\''`)}'`);

export interface Endpoints {
  readonly host: string;
  readonly httpPort: number;
  readonly grpcPort: number;
}

/** The lines printed once everything is ready; each command works as printed. */
export function banner(model: ModelChoice, ep: Endpoints, image: string | undefined, withKeys: boolean): string {
  const host = ep.host === '0.0.0.0' || ep.host === '::' ? 'localhost' : ep.host.includes(':') ? `[${ep.host}]` : ep.host;
  const base = `http://${host}:${ep.httpPort}`;
  const img = shellQuote(image ?? 'photo.jpg');
  const auth = withKeys ? ` -H "Authorization: Bearer $SEGSERVE_API_KEY"` : '';
  const url = `${base}/v1/models/${model.name}/segment`;
  const lines = [
    '',
    `segserve is running: model ${model.name} version ${model.version} (${model.note})`,
    '',
    `  upload page    ${base}/`,
    `  REST, JSON     curl -sS${auth} -H 'Accept: application/json' -F image=@${img} ${url}`,
    `  REST, mask     curl -sS${auth} -F image=@${img} -o mask.png ${url}`,
    `  gRPC           node ${shellQuote(GRPC_EXAMPLE)} ${host}:${ep.grpcPort} ${model.name} ${img} mask.png${withKeys ? ' "$SEGSERVE_API_KEY"' : ''}`,
    `  API docs       ${base}/openapi.json      metrics  ${base}/metrics`,
    '',
    ...(withKeys ? ['  API keys are on: export SEGSERVE_API_KEY=<one of SEGSERVE_API_KEYS> before running the examples.', ''] : []),
    'Ctrl-C stops everything.',
    '',
  ];
  return lines.join('\n');
}

interface Child {
  readonly name: string;
  readonly proc: ChildProcess;
  readonly exited: Promise<number | null>;
  /** Resolves with the child's start-up line; rejects on exit or timeout. */
  waitForStartup<S extends StartupService>(service: S, timeoutMs: number): Promise<StartupLine<S>>;
}

/** Child output: JSON log lines at warn/error (or all with SEGSERVE_LOG_LEVEL=debug) to stderr. */
function startChild(name: string, args: string[], env: Env, verbose: boolean): Child {
  // Own process group: Ctrl-C reaches only this process, which then stops the children in order.
  const proc = spawn(process.execPath, [SEGSERVE_BIN, ...args], { env: env as NodeJS.ProcessEnv, stdio: ['ignore', 'pipe', 'pipe'], detached: true, cwd: REPO_ROOT });
  const exited = new Promise<number | null>((resolve) => {
    proc.once('exit', (code, signal) => resolve(signal ? null : code));
    proc.once('error', () => resolve(-1));
  });
  const watchers = new Set<(line: string) => void>();
  const recent: string[] = [];
  const onLine = (line: string): void => {
    recent.push(line);
    if (recent.length > 40) recent.shift();
    let obj: Record<string, unknown> | undefined;
    try {
      obj = line.startsWith('{') ? (JSON.parse(line) as Record<string, unknown>) : undefined;
    } catch {
      obj = undefined;
    }
    if (verbose || !obj || obj['level'] === 'warn' || obj['level'] === 'error') process.stderr.write(`[${name}] ${line}\n`);
    for (const w of watchers) w(line);
  };
  if (proc.stdout) createInterface({ input: proc.stdout }).on('line', onLine);
  if (proc.stderr) createInterface({ input: proc.stderr }).on('line', onLine);
  const waitForStartup = <S extends StartupService>(service: S, timeoutMs: number): Promise<StartupLine<S>> =>
    new Promise((resolve, reject) => {
      const done = (): void => {
        clearTimeout(timer);
        watchers.delete(watcher);
      };
      const watcher = (line: string): void => {
        const startup = parseStartupLine(service, line);
        if (startup) {
          done();
          resolve(startup);
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`${name} did not become ready within ${timeoutMs / 1000} s; last output:\n${recent.join('\n')}`));
      }, timeoutMs);
      watchers.add(watcher);
      void exited.then((code) => {
        done();
        reject(new Error(`${name} exited (code ${String(code)}) while starting; last output:\n${recent.join('\n')}`));
      });
    });
  return { name, proc, exited, waitForStartup };
}

/** SIGTERM, then SIGKILL after `graceMs`. */
async function stopChild(child: Child, graceMs: number): Promise<void> {
  if (child.proc.exitCode !== null || child.proc.signalCode !== null) return;
  child.proc.kill('SIGTERM');
  const timer = setTimeout(() => child.proc.kill('SIGKILL'), graceMs);
  await child.exited;
  clearTimeout(timer);
}

async function waitReady(url: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(3000) });
      if (res.ok) return;
    } catch {
      // not up yet
    }
    if (Date.now() > deadline) throw new Error(`${url} did not answer 200 within ${timeoutMs / 1000} s`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

function parseArgs(argv: readonly string[]): { modelDir?: string; help: boolean } {
  const out: { modelDir?: string; help: boolean } = { help: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--help' || a === '-h') out.help = true;
    else if (a === '--model' && argv[i + 1] !== undefined) out.modelDir = path.resolve(argv[++i] ?? '');
    else throw new Error(`unexpected argument '${a ?? ''}' (usage: segserve start [--model <dir>])`);
  }
  return out;
}

export async function runStart(argv: readonly string[], env: Env): Promise<number> {
  const args = parseArgs(argv);
  if (args.help) {
    process.stdout.write('usage: segserve start [--model <dir>]\n\ninference + gateway on the bundled default model; page on http://127.0.0.1:8080/.\nSEGSERVE_HTTP_PORT, SEGSERVE_GRPC_PORT, SEGSERVE_HOST (127.0.0.1) and SEGSERVE_API_KEYS apply to the gateway.\n');
    return 0;
  }
  const model = args.modelDir ? describeModel(args.modelDir, 'from --model') : chooseDefaultModel();
  const verbose = env['SEGSERVE_LOG_LEVEL'] === 'debug';
  // The local path needs no NATS: children never see a NATS URL, so they cannot wait for one.
  const base: Record<string, string | undefined> = { ...env, SEGSERVE_NATS_URL: undefined };
  const host = env['SEGSERVE_HOST'] ?? '127.0.0.1';

  const inference = startChild('inference', ['inference', '--model', model.dir], { ...INFERENCE_MALLOC_ENV, ...base, SEGSERVE_HOST: '127.0.0.1', SEGSERVE_GRPC_PORT: '0', SEGSERVE_METRICS_PORT: '0', SEGSERVE_LOG_LEVEL: verbose ? 'debug' : 'info' }, verbose);
  let gateway: Child | undefined;
  const stopAll = async (): Promise<void> => {
    // Gateway first: it stops taking requests and finishes its in-flight ones while inference
    // is still there to answer them.
    if (gateway) await stopChild(gateway, 15_000);
    await stopChild(inference, 25_000);
  };

  let signalled: (sig: NodeJS.Signals) => void = () => undefined;
  const signal = new Promise<NodeJS.Signals>((resolve) => {
    signalled = resolve;
  });
  const onSignal = (sig: NodeJS.Signals): void => signalled(sig);
  for (const s of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(s, onSignal);

  try {
    const serving = await Promise.race([inference.waitForStartup('inference', 180_000), signal.then(() => undefined)]);
    if (!serving) {
      await stopAll();
      return 0;
    }
    gateway = startChild(
      'gateway',
      ['gateway'],
      {
        ...base,
        SEGSERVE_HOST: host,
        SEGSERVE_UPSTREAMS: `${model.name}=ipv4:127.0.0.1:${serving.grpc_port}`,
        SEGSERVE_DEFAULT_MODEL: model.name,
      },
      verbose,
    );
    const listening = await Promise.race([gateway.waitForStartup('gateway', 60_000), signal.then(() => undefined)]);
    if (!listening) {
      await stopAll();
      return 0;
    }
    const ep: Endpoints = { host, httpPort: listening.http_port, grpcPort: listening.grpc_port };
    const local = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host;
    await waitReady(`http://${local}:${ep.httpPort}/readyz`, 60_000);
    process.stdout.write(banner(model, ep, sampleImage(model), (env['SEGSERVE_API_KEYS'] ?? '').trim() !== ''));

    const outcome = await Promise.race([signal.then((s) => ({ signal: s })), inference.exited.then((code) => ({ child: inference, code })), gateway.exited.then((code) => ({ child: gateway, code }))]);
    if ('signal' in outcome) {
      process.stdout.write(`\n${outcome.signal}: stopping the gateway, then inference …\n`);
      await stopAll();
      process.stdout.write('stopped.\n');
      return 0;
    }
    process.stderr.write(`segserve start: ${outcome.child?.name ?? 'a child'} exited unexpectedly (code ${String(outcome.code)}); stopping\n`);
    await stopAll();
    return 1;
  } catch (err) {
    process.stderr.write(`segserve start: ${err instanceof Error ? err.message : String(err)}\n`);
    await stopAll();
    return 1;
  } finally {
    for (const s of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.off(s, onSignal);
  }
}

/** `segserve start` (what `npm start` runs). */
export function run(_command: string, argv: readonly string[]): Promise<number> {
  return runStart(argv, process.env);
}
