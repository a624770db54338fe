// `segserve stack`: the whole system on one machine — nats-server (JetStream), Prometheus when
// installed (scraping the promoter, the gateway, and the inference processes through the
// promoter's service-discovery endpoint), the promoter with the local driver (which starts
// inference on the bundled default model as the first stable), and the gateway following the
// rollout state. Prints what runs where; Ctrl-C stops everything.
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { parseStartupLine } from '@segserve/proto';
import { generateSigningKeys } from '@segserve/promoter';
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

interface Child {
  readonly name: string;
  readonly proc: ChildProcess;
  readonly logFile: string;
  readonly exited: Promise<number | null>;
  /** Resolves with the first JSON log object (or raw line) that `ready` accepts. */
  waitReady(ready: (line: string) => boolean, timeoutMs: number): Promise<string>;
  stop(graceMs?: number): Promise<void>;
}

function findBinary(name: string, env: NodeJS.ProcessEnv): string | undefined {
  const dirs = (env['PATH'] ?? '').split(path.delimiter).concat(['/usr/sbin', '/usr/bin', '/usr/local/bin']);
  return dirs.map((d) => path.join(d, name)).find((p) => existsSync(p));
}

function startChild(name: string, cmd: string, args: readonly string[], env: NodeJS.ProcessEnv, logDir: string): Child {
  const logFile = path.join(logDir, `${name}.log`);
  const log = createWriteStream(logFile, { flags: 'a' });
  const proc = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  const waiters = new Set<(line: string) => void>();
  let rest = '';
  const onData = (chunk: Buffer): void => {
    log.write(chunk);
    const parts = (rest + chunk.toString('utf8')).split('\n');
    rest = parts.pop() ?? '';
    for (const l of parts) {
      lines.push(l);
      if (lines.length > 200) lines.shift();
      for (const w of waiters) w(l);
    }
  };
  proc.stdout?.on('data', onData);
  proc.stderr?.on('data', onData);
  const exited = new Promise<number | null>((resolve) => {
    proc.on('exit', (code) => resolve(code));
    proc.on('error', () => resolve(-1));
  });
  return {
    name,
    proc,
    logFile,
    exited,
    waitReady: (ready, timeoutMs) =>
      new Promise((resolve, reject) => {
        const past = lines.find(ready);
        if (past !== undefined) return resolve(past);
        const timer = setTimeout(() => reject(new Error(`${name} not ready after ${timeoutMs / 1000} s; see ${logFile}`)), timeoutMs);
        const w = (l: string): void => {
          if (!ready(l)) return;
          clearTimeout(timer);
          waiters.delete(w);
          resolve(l);
        };
        waiters.add(w);
        void exited.then((code) => {
          clearTimeout(timer);
          reject(new Error(`${name} exited (code ${String(code)}) before it was ready:\n${lines.slice(-15).join('\n')}`));
        });
      }),
    stop: async (graceMs = 30_000) => {
      if (proc.exitCode === null && proc.signalCode === null) {
        proc.kill('SIGTERM');
        const t = setTimeout(() => proc.kill('SIGKILL'), graceMs);
        await exited;
        clearTimeout(t);
      }
      log.end();
    },
  };
}

const jsonMsg = (msg: string) => (line: string): boolean => line.startsWith('{') && line.includes(`"msg":"${msg}"`);
const field = (line: string, key: string): unknown => (JSON.parse(line) as Record<string, unknown>)[key];

export async function runStack(argv: readonly string[], ctx: StackContext): Promise<number> {
  const out = ctx.out ?? ((t: string) => process.stdout.write(t));
  const { values } = parseArgs({
    args: [...argv],
    options: {
      model: { type: 'string' },
      policy: { type: 'string' },
      'nats-port': { type: 'string', default: '4222' },
      'http-port': { type: 'string', default: '8080' },
      'grpc-port': { type: 'string', default: '9090' },
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
  const children: Child[] = [];
  const stopAll = async (): Promise<void> => {
    for (const c of [...children].reverse()) await c.stop();
  };
  // Ctrl-C may come while things are still starting: from here on it stops what runs.
  let interrupted: (signal: string) => void = () => undefined;
  const signalled = new Promise<string>((resolve) => (interrupted = resolve));
  const onSignal = (signal: NodeJS.Signals): void => interrupted(signal);
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const untilReady = <T>(p: Promise<T>): Promise<T> => Promise.race([p, signalled.then((sig) => Promise.reject(new Error(`interrupted (${sig}) while starting`)))]);
  try {
    // Room for the default limits of the NATS objects (the model store alone may take 20 GiB).
    await writeFile(path.join(dir, 'nats.conf'), `listen: 127.0.0.1:${values['nats-port']}\nserver_name: segserve_stack\njetstream { store_dir: ${JSON.stringify(path.join(dir, 'jetstream'))}, max_memory_store: 256MB, max_file_store: 24GB }\n`);
    const nats = startChild('nats-server', natsServer, ['-c', path.join(dir, 'nats.conf')], baseEnv, logDir);
    children.push(nats);
    await untilReady(nats.waitReady((l) => l.includes('Server is ready'), 30_000));

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
      await untilReady(waitHttp(`${promUrl}/-/ready`, prom, 60_000));
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
    const running = parseStartupLine('promoter', await untilReady(promoter.waitReady((l) => parseStartupLine('promoter', l) !== undefined, 300_000)))!;
    const stableLine = promoter.waitReady(jsonMsg('initial stable serving'), 1);
    stableLine.catch(() => undefined);

    const gateway = startChild('gateway', process.execPath, [ctx.segserveBin, 'gateway'], { ...baseEnv, SEGSERVE_NATS_URL: natsUrl, SEGSERVE_HTTP_PORT: values['http-port'], SEGSERVE_GRPC_PORT: values['grpc-port'], SEGSERVE_HOST: '127.0.0.1' }, logDir);
    children.push(gateway);
    await untilReady(gateway.waitReady((l) => parseStartupLine('gateway', l) !== undefined, 120_000));
    // `listening` comes before the gateway's first read of the rollout state: announce the stack
    // only once the gateway has a ready upstream, so the printed commands work at once.
    await untilReady(gatewayReady(`http://127.0.0.1:${values['http-port']}/readyz`, 120_000));
    const stable = await stableLine.then((l) => `${String(field(l, 'model'))} ${String(field(l, 'version'))} at ${String(field(l, 'target'))}`, () => `see ${promoter.logFile}`);

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
      ...children.map((c) => c.exited.then((code) => `${c.name} exited (code ${String(code)}); see ${c.logFile}`)),
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

async function waitHttp(url: string, child: Child, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let exited = false;
  void child.exited.then(() => (exited = true));
  while (Date.now() < deadline) {
    if (exited) throw new Error(`${child.name} exited; see ${child.logFile}`);
    const ok = await fetch(url).then((r) => r.ok, () => false);
    if (ok) return;
    await new Promise((r) => setTimeout(r, 300));
  }
  throw new Error(`${child.name} not ready after ${timeoutMs / 1000} s; see ${child.logFile}`);
}

/** Polls the gateway's /readyz until it answers 200, or fails after `timeoutMs`. */
async function gatewayReady(url: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await fetch(url).then((r) => r.ok, () => false);
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`the gateway was not ready within ${timeoutMs} ms (${url})`);
    await new Promise((r) => setTimeout(r, 250));
  }
}
