// `segserve stack`: the whole system on one machine — nats-server (JetStream), Prometheus when
// installed (scraping the promoter, the gateway, and the inference processes through the
// promoter's service-discovery endpoint), the promoter with the local driver (which starts
// inference on the bundled default model as the first stable), and the gateway following the
// rollout state. Prints what runs where; Ctrl-C stops everything.
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { generateSigningKeys } from '@segserve/promoter';
import { findBinary, parseJsonLine, supervise, waitForHttp, type Supervised } from '@segserve/runtime';
import { chooseDefaultModel, REPO_ROOT } from './models.js';

const USAGE = 'usage: segserve stack [--model <dir>] [--policy <file|dir>] [--nats-port 4222] [--http-port 8080] [--grpc-port 9090] [--metrics-port 9102] [--prometheus-port 9091] [--no-prometheus]';

/** `segserve stack`. */
export function run(_command: string, argv: readonly string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(`${USAGE}\n`);
    return Promise.resolve(0);
  }
  return runStack(argv, { env: process.env, repoRoot: REPO_ROOT, segserveBin: path.join(REPO_ROOT, 'packages', 'cli', 'dist', 'bin.js') });
}

interface StackContext {
  readonly env: NodeJS.ProcessEnv;
  readonly repoRoot: string;
  readonly segserveBin: string;
  readonly out?: (text: string) => void;
}

/** A child whose output goes to <logDir>/<name>.log as well. */
function startChild(name: string, command: string, args: readonly string[], env: NodeJS.ProcessEnv, logDir: string): Supervised {
  return supervise({ command, args, env, name, output: { kind: 'pipe', tee: logFile(logDir, name) }, keepLines: 200 });
}

const logFile = (logDir: string, name: string): string => path.join(logDir, `${name}.log`);

export async function runStack(argv: readonly string[], ctx: StackContext): Promise<number> {
  const out = ctx.out ?? ((t: string) => process.stdout.write(t));
  const { values } = parseArgs({
    args: [...argv],
    options: {
      model: { type: 'string' },
      policy: { type: 'string' },
      'nats-port': { type: 'string', default: '4222' },
      // The gateway's ports move with the variables of `segserve start` too (README, configuration).
      'http-port': { type: 'string', default: ctx.env['SEGSERVE_HTTP_PORT'] || '8080' },
      'grpc-port': { type: 'string', default: ctx.env['SEGSERVE_GRPC_PORT'] || '9090' },
      'metrics-port': { type: 'string', default: '9102' },
      'prometheus-port': { type: 'string', default: '9091' },
      'no-prometheus': { type: 'boolean' },
    },
  });
  const natsServer = findBinary('nats-server', ctx.env);
  if (!natsServer) throw new Error('nats-server is not installed; install it with: sudo apt-get install -y nats-server (or: bash scripts/setup.sh)');
  const prometheus = values['no-prometheus'] ? undefined : findBinary('prometheus', ctx.env);
  const modelDir = path.resolve(values.model ?? chooseDefaultModel(ctx.repoRoot).dir);
  const dir = await mkdtemp(path.join(os.tmpdir(), 'segserve-stack-'));
  const logDir = path.join(dir, 'logs');
  await mkdir(logDir);
  const natsUrl = `nats://127.0.0.1:${values['nats-port']}`;
  const metricsPort = values['metrics-port'];
  const baseEnv = Object.fromEntries(Object.entries(ctx.env).filter(([k]) => !k.startsWith('SEGSERVE_') || k === 'SEGSERVE_LOG_LEVEL'));
  const children: Supervised[] = [];
  const stopAll = async (): Promise<void> => {
    for (const c of [...children].reverse()) await c.stop(30_000);
  };
  // Ctrl-C may come while things are still starting: it aborts the waits, then stops what runs.
  const interrupt = new AbortController();
  let interrupted: (signal: string) => void = () => undefined;
  const signalled = new Promise<string>((resolve) => (interrupted = resolve));
  const onSignal = (signal: NodeJS.Signals): void => {
    interrupt.abort(new Error(`interrupted (${signal}) while starting`));
    interrupted(signal);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const wait = (timeoutMs: number) => ({ timeoutMs, signal: interrupt.signal });
  try {
    // Room for the default limits of the NATS objects (the model store alone may take 20 GiB).
    await writeFile(path.join(dir, 'nats.conf'), `listen: 127.0.0.1:${values['nats-port']}\nserver_name: segserve_stack\njetstream { store_dir: ${JSON.stringify(path.join(dir, 'jetstream'))}, max_memory_store: 256MB, max_file_store: 24GB }\n`);
    const nats = startChild('nats-server', natsServer, ['-c', path.join(dir, 'nats.conf')], baseEnv, logDir);
    children.push(nats);
    await nats.waitForLine((l) => l.includes('Server is ready'), wait(30_000), 'Server is ready');

    const keys = generateSigningKeys();
    const seedFile = path.join(dir, 'publisher.seed');
    await writeFile(seedFile, `${keys.seed}\n`);
    await chmod(seedFile, 0o600);

    let promUrl: string | undefined;
    if (prometheus) {
      const config = {
        global: { scrape_interval: '5s', evaluation_interval: '5s' },
        scrape_configs: [
          { job_name: 'promoter', static_configs: [{ targets: [`127.0.0.1:${metricsPort}`] }] },
          { job_name: 'gateway', static_configs: [{ targets: [`127.0.0.1:${values['http-port']}`] }] },
          { job_name: 'inference', http_sd_configs: [{ url: `http://127.0.0.1:${metricsPort}/sd/inference`, refresh_interval: '5s' }] },
        ],
      };
      await writeFile(path.join(dir, 'prometheus.yml'), JSON.stringify(config));
      const prom = startChild('prometheus', prometheus, [`--config.file=${path.join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${path.join(dir, 'prometheus')}`, `--web.listen-address=127.0.0.1:${values['prometheus-port']}`, '--log.level=warn'], baseEnv, logDir);
      children.push(prom);
      promUrl = `http://127.0.0.1:${values['prometheus-port']}`;
      await waitForHttp(`${promUrl}/-/ready`, { ...wait(60_000), process: prom });
    }

    const promoter = startChild('promoter', process.execPath, [ctx.segserveBin, 'promoter'], {
      ...baseEnv,
      SEGSERVE_NATS_URL: natsUrl,
      SEGSERVE_DEPLOYER: 'local',
      SEGSERVE_METRICS_PORT: metricsPort,
      SEGSERVE_SIGNERS: keys.publicKey,
      SEGSERVE_INITIAL_STABLE: modelDir,
      ...(values.policy ? { SEGSERVE_POLICY: path.resolve(values.policy) } : {}),
      // The first stable is served from disk (its <model>/<version> root), the rest from the object store.
      SEGSERVE_MODEL_ROOTS: [...new Set([path.join(ctx.repoRoot, 'models'), path.dirname(path.dirname(modelDir))])].join(','),
      ...(promUrl ? { SEGSERVE_PROMETHEUS_URL: promUrl } : {}),
    }, logDir);
    children.push(promoter);
    const running = await promoter.waitForStartup('promoter', wait(300_000));
    // Logged before the start-up line when the first stable came up.
    const stableLine = promoter.lines().map(parseJsonLine).find((o) => o?.['msg'] === 'initial stable serving');

    const gateway = startChild('gateway', process.execPath, [ctx.segserveBin, 'gateway'], { ...baseEnv, SEGSERVE_NATS_URL: natsUrl, SEGSERVE_HTTP_PORT: values['http-port'], SEGSERVE_GRPC_PORT: values['grpc-port'], SEGSERVE_HOST: '127.0.0.1' }, logDir);
    children.push(gateway);
    await gateway.waitForStartup('gateway', wait(120_000));
    // The start-up line comes before the gateway's first read of the rollout state: announce the
    // stack only once the gateway has a ready upstream, so the printed commands work at once.
    await waitForHttp(`http://127.0.0.1:${values['http-port']}/readyz`, { ...wait(120_000), process: gateway });
    const stable = stableLine ? `${String(stableLine['model'])} ${String(stableLine['version'])} at ${String(stableLine['target'])}` : `see ${logFile(logDir, 'promoter')}`;

    const bin = 'npx segserve';
    out(
      [
        '',
        'segserve stack is running (Ctrl-C stops everything)',
        '',
        `  gateway      http://127.0.0.1:${values['http-port']}/   (upload page, REST)   gRPC 127.0.0.1:${values['grpc-port']}`,
        `  inference    ${stable}   (started by the promoter, local driver)`,
        `  promoter     metrics http://127.0.0.1:${running.metrics_port}/metrics   canary figures from ${promUrl ? 'Prometheus' : 'its own scrapes of the inference processes'}`,
        `  nats         ${natsUrl}   (JetStream store ${path.join(dir, 'jetstream')})`,
        `  prometheus   ${promUrl ?? 'not installed (sudo apt-get install -y prometheus); the promoter scrapes /metrics itself'}`,
        `  logs         ${logDir}/`,
        '',
        'Publish a candidate and watch it:',
        `  export SEGSERVE_NATS_URL=${natsUrl}`,
        `  ${bin} publish --model models/facade-ads/<version> --seed-file ${seedFile}`,
        `  ${bin} rollout watch ${path.basename(path.dirname(modelDir))} --until-done --experiment <id printed by publish>`,
        `  ${bin} rollback ${path.basename(path.dirname(modelDir))} --reason "…"`,
        '',
      ].join('\n'),
    );
    const signal = await Promise.race([
      signalled,
      ...children.map((c) => c.exited.then((code) => `${c.name} exited (code ${String(code)}); see ${logFile(logDir, c.name)}`)),
    ]);
    out(`\nstopping (${signal})…\n`);
    await stopAll();
    await rm(dir, { recursive: true, force: true });
    // The promoter's local-driver state (process registry, inference logs) goes too.
    const stateDir = running.state_dir;
    if (typeof stateDir === 'string' && path.basename(stateDir).startsWith('segserve-promoter-')) await rm(stateDir, { recursive: true, force: true });
    return signal.startsWith('SIG') ? 0 : 1;
  } catch (err) {
    await stopAll();
    out(`segserve stack: ${err instanceof Error ? err.message : String(err)}\n(logs kept in ${logDir})\n`);
    return 1;
  } finally {
    process.removeListener('SIGINT', onSignal);
    process.removeListener('SIGTERM', onSignal);
  }
}
