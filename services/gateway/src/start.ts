// `segserve start` (what `npm start` runs): one inference process on the bundled default model
// and a gateway in front of it with a static route, both as child processes of this one. Waits
// until the page answers and /readyz is 200, prints how to use it, and on Ctrl-C (SIGINT),
// SIGTERM or SIGHUP stops the gateway first (so it drains), then inference. No NATS involved.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseStartupLine, type StartupLine, type StartupService } from '@segserve/proto';
import { INFERENCE_MALLOC_ENV } from '@segserve/runtime';

type Env = Readonly<Record<string, string | undefined>>;

/** The repository root, from services/gateway/{src,dist}/start.* */
export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const SEGSERVE_BIN = path.join(REPO_ROOT, 'packages', 'cli', 'dist', 'bin.js');
const GRPC_EXAMPLE = path.join(REPO_ROOT, 'services', 'gateway', 'dist', 'grpc-example.js');

export interface ModelChoice {
  readonly dir: string;
  readonly name: string;
  readonly version: string;
  /** Why this one (printed): the bundled default, or the test fixture standing in for it. */
  readonly note: string;
}

const isModelDir = (dir: string): boolean => existsSync(path.join(dir, 'model.json')) && existsSync(path.join(dir, 'model.onnx'));

/** Version directories of `modelDir`, newest first ("10" after "9"; "2026-11-27.1" by text). */
function versionDirs(modelDir: string): string[] {
  if (!existsSync(modelDir)) return [];
  return readdirSync(modelDir)
    .filter((v) => statSync(path.join(modelDir, v)).isDirectory() && isModelDir(path.join(modelDir, v)))
    .sort((a, b) => b.localeCompare(a, 'en', { numeric: true }));
}

function describe(dir: string, note: string): ModelChoice {
  const manifest = JSON.parse(readFileSync(path.join(dir, 'model.json'), 'utf8')) as { name?: unknown; version?: unknown };
  return { dir, name: String(manifest.name), version: String(manifest.version), note };
}

/**
 * The bundled default version (issue 4: `models/facade-ads/2`, the reduced PSPNet-ResNet18 that
 * meets the study's targets). Other bundled versions are candidates for promotion demos, so
 * "newest" is not "default". A `models/facade-ads/DEFAULT` file (one version per line) overrides.
 */
export const BUNDLED_DEFAULT_VERSION = '2';

/**
 * The model `start` serves: models/facade-ads/<DEFAULT file, else 2, else the newest>, and while
 * none is in the repository, the tiny test fixture so that the command still works.
 */
export function chooseDefaultModel(root: string = REPO_ROOT): ModelChoice {
  const bundled = path.join(root, 'models', 'facade-ads');
  const marker = path.join(bundled, 'DEFAULT');
  const preferred = existsSync(marker) ? readFileSync(marker, 'utf8').trim() : BUNDLED_DEFAULT_VERSION;
  if (preferred !== '' && isModelDir(path.join(bundled, preferred))) return describe(path.join(bundled, preferred), 'the bundled default model');
  const newest = versionDirs(bundled)[0];
  if (newest) return describe(path.join(bundled, newest), 'the bundled default model');
  const fixture = path.join(root, 'test', 'fixtures', 'models', 'tiny-seg');
  const tiny = versionDirs(fixture)[0];
  if (tiny) return describe(path.join(fixture, tiny), 'the tiny test model: models/facade-ads has no model version yet');
  throw new Error(`no model to serve: neither ${bundled}/<version>/ nor ${fixture}/<version>/ has model.json + model.onnx`);
}

/** An image for the printed examples: the model's golden set, else the tiny golden set. */
export function sampleImage(model: ModelChoice, root: string = REPO_ROOT): string | undefined {
  const candidates = [path.join(path.dirname(model.dir), 'golden', 'images'), path.join(root, 'models', 'facade-ads', 'golden', 'images'), path.join(root, 'test', 'fixtures', 'golden-tiny', 'images')];
  for (const dir of candidates) {
    if (!existsSync(dir)) continue;
    const image = readdirSync(dir)
      .filter((f) => /\.(jpe?g|png|webp)$/i.test(f))
      .sort()[0];
    if (image) return path.join(dir, image);
  }
  return undefined;
}

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
  const model = args.modelDir ? describe(args.modelDir, 'from --model') : chooseDefaultModel();
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
