// `segserve start` (what `npm start` runs): one inference process on the bundled default model
// and a gateway in front of it with a static route, both as child processes of this one. Waits
// until the page answers and /readyz is 200, prints how to use it, and on Ctrl-C (SIGINT),
// SIGTERM or SIGHUP stops the gateway first (so it drains), then inference. No NATS involved.
import path from 'node:path';
import { INFERENCE_MALLOC_ENV, parseJsonLine, supervise, waitForHttp, type Supervised } from '@segserve/runtime';
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
    `  REST, colour   curl -sS${auth} -F image=@${img} -o color.png '${url}?format=color'`,
    `  gRPC           node ${shellQuote(GRPC_EXAMPLE)} ${host}:${ep.grpcPort} ${model.name} ${img} mask.png${withKeys ? ' "$SEGSERVE_API_KEY"' : ''}`,
    `  API docs       ${base}/openapi.json      metrics  ${base}/metrics`,
    '',
    ...(withKeys ? ['  API keys are on: export SEGSERVE_API_KEY=<one of SEGSERVE_API_KEYS> before running the examples.', ''] : []),
    'Ctrl-C stops everything.',
    '',
  ];
  return lines.join('\n');
}

/** Child output: JSON log lines at warn/error (or all with SEGSERVE_LOG_LEVEL=debug) go to stderr. */
function startChild(name: string, args: string[], env: Env, verbose: boolean): Supervised {
  return supervise({
    command: process.execPath,
    args: [SEGSERVE_BIN, ...args],
    env,
    cwd: REPO_ROOT,
    name,
    // Own process group: Ctrl-C reaches only this process, which then stops the children in order.
    detached: true,
    keepLines: 200,
    onLine: (line) => {
      const level = parseJsonLine(line)?.['level'];
      if (verbose || level === undefined || level === 'warn' || level === 'error') process.stderr.write(`[${name}] ${line}\n`);
    },
  });
}

/** Ctrl-C (or SIGTERM/SIGHUP) while starting: not a failure. */
class Interrupted extends Error {
  constructor(readonly signal: NodeJS.Signals) {
    super(`interrupted (${signal})`);
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
  let gateway: Supervised | undefined;
  const stopAll = async (): Promise<void> => {
    // Gateway first: it stops taking requests and finishes its in-flight ones while inference
    // is still there to answer them.
    await gateway?.stop(15_000);
    await inference.stop(25_000);
  };

  // Ctrl-C may come while things are still starting: it aborts the waits, then stops what runs.
  const interrupt = new AbortController();
  let signalled: (sig: NodeJS.Signals) => void = () => undefined;
  const signal = new Promise<NodeJS.Signals>((resolve) => {
    signalled = resolve;
  });
  const onSignal = (sig: NodeJS.Signals): void => {
    interrupt.abort(new Interrupted(sig));
    signalled(sig);
  };
  for (const s of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(s, onSignal);

  try {
    const serving = await inference.waitForStartup('inference', { timeoutMs: 180_000, signal: interrupt.signal });
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
    const listening = await gateway.waitForStartup('gateway', { timeoutMs: 60_000, signal: interrupt.signal });
    const ep: Endpoints = { host, httpPort: listening.http_port, grpcPort: listening.grpc_port };
    const local = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host;
    await waitForHttp(`http://${local}:${ep.httpPort}/readyz`, { timeoutMs: 60_000, process: gateway, signal: interrupt.signal });
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
    await stopAll();
    if (err instanceof Interrupted) return 0;
    process.stderr.write(`segserve start: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  } finally {
    for (const s of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.off(s, onSignal);
  }
}

/** `segserve start` (what `npm start` runs). */
export function run(_command: string, argv: readonly string[]): Promise<number> {
  return runStart(argv, process.env);
}
