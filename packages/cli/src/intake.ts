// `segserve publish | keys | decisions`. One-shot commands: like a main.ts,
// this is where their environment is read. The signing seed comes from a file or
// SEGSERVE_SIGNING_SEED, never from a flag (flags end up in shell history and `ps`).
import { execFileSync } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { Kvm } from '@nats-io/kv';
import { jetstream } from '@nats-io/jetstream';
import { NATS_NAMES, SegserveError, isValidModelName } from '@segserve/proto';
import { DecisionStore, fmt, generateSigningKeys, signingKeyFromSeed } from '@segserve/promoter';
import { checkUnknownVars, ConfigError, natsUrlVar } from '@segserve/runtime';
import { decisionsTable } from './decisions-table.js';
import { publishModel } from './publish.js';
import { DEFAULT_NATS_URL, withNats } from './nats.js';

export interface CliIo {
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly out: (text: string) => void;
  readonly err: (text: string) => void;
  /** Progress bars only on a terminal, and never in CI. */
  readonly interactive: boolean;
  readonly now: () => Date;
}

function defaultIo(): CliIo {
  return {
    env: process.env,
    out: (t) => process.stdout.write(t),
    err: (t) => process.stderr.write(t),
    interactive: Boolean(process.stderr.isTTY) && !process.env['CI'],
    now: () => new Date(),
  };
}

const USAGE = {
  publish: 'usage: segserve publish --model <dir> [--result <metrics.json>] [--golden <dir>] [--id <id>] [--seed-file <file>] [--nats <url>] [--json]',
  keys: 'usage: segserve keys generate [--out <seed file>] | segserve keys public [--seed-file <file>]',
  decisions: 'usage: segserve decisions <model> [--json] [--nats <url>]',
} as const;

/** The `segserve` entry of these commands. */
export function run(command: string, argv: readonly string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(`${USAGE[command as keyof typeof USAGE] ?? `segserve ${command}`}\n`);
    return Promise.resolve(0);
  }
  return runIntakeCommand(command, argv);
}

export async function runIntakeCommand(command: string, argv: readonly string[], io: CliIo = defaultIo()): Promise<number> {
  try {
    checkUnknownVars(io.env);
    switch (command) {
      case 'publish':
        return await publishCommand(argv, io);
      case 'keys':
        return await keysCommand(argv, io);
      case 'decisions':
        return await decisionsCommand(argv, io);
      default:
        io.err(`segserve ${command}: not an intake command\n`);
        return 2;
    }
  } catch (err) {
    const usage = err instanceof TypeError && 'code' in err && String(err.code).startsWith('ERR_PARSE_ARGS') ? `\n${USAGE[command as keyof typeof USAGE] ?? ''}` : '';
    io.err(`segserve ${command}: ${err instanceof Error ? err.message : String(err)}${usage}\n`);
    return err instanceof SegserveError || err instanceof ConfigError || usage ? 2 : 1;
  }
}

function gitCommit(): string {
  try {
    return execFileSync('git', ['rev-parse', 'HEAD'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim() || 'unknown';
  } catch {
    return 'unknown';
  }
}

/** Where the result came from: GitLab CI / GitHub Actions variables, else the git commit. */
function sourceFromEnv(env: CliIo['env']): { commit: string; pipeline: string; job: string } {
  return {
    commit: env['CI_COMMIT_SHA'] ?? env['GITHUB_SHA'] ?? gitCommit(),
    pipeline: env['CI_PIPELINE_ID'] ?? env['GITHUB_RUN_ID'] ?? 'local',
    job: env['CI_JOB_ID'] ?? env['GITHUB_JOB'] ?? 'local',
  };
}

async function readSeed(seedFile: string | undefined, env: CliIo['env']): Promise<string> {
  if (seedFile) return readFile(seedFile, 'utf8');
  const seed = env['SEGSERVE_SIGNING_SEED'];
  if (seed) return seed;
  throw new SegserveError('INVALID_INPUT', 'no signing key: set SEGSERVE_SIGNING_SEED or pass --seed-file <file> (make a key pair with `segserve keys generate`)');
}

function progressBar(io: CliIo): ((file: string, sent: number, total: number) => void) | undefined {
  if (!io.interactive) return undefined;
  let last = -1;
  return (file, sent, total) => {
    const pct = total === 0 ? 100 : Math.floor((sent / total) * 100);
    if (pct === last) return;
    last = pct;
    const bar = '#'.repeat(Math.floor(pct / 4)).padEnd(25, '.');
    io.err(`\r  uploading ${file.padEnd(10)} [${bar}] ${String(pct).padStart(3)}%  ${(sent / 1048576).toFixed(1)}/${(total / 1048576).toFixed(1)} MB${pct === 100 ? '\n' : ''}`);
    if (pct === 100) last = -1;
  };
}

async function publishCommand(argv: readonly string[], io: CliIo): Promise<number> {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      model: { type: 'string' },
      result: { type: 'string' },
      golden: { type: 'string' },
      id: { type: 'string' },
      'seed-file': { type: 'string' },
      nats: { type: 'string' },
      json: { type: 'boolean', default: false },
    },
    strict: true,
    allowPositionals: false,
  });
  if (!values.model) throw new SegserveError('INVALID_INPUT', `--model <dir> is required\n${USAGE.publish}`);
  const key = signingKeyFromSeed(await readSeed(values['seed-file'], io.env));
  const url = values.nats ?? natsUrlVar(io.env) ?? DEFAULT_NATS_URL;
  const published = await withNats(url, 'segserve-publish', (nc) =>
    publishModel({
      nc,
      modelDir: values.model as string,
      ...(values.result ? { resultFile: values.result } : {}),
      ...(values.golden ? { goldenDir: values.golden } : {}),
      ...(values.id ? { id: values.id } : {}),
      key,
      source: sourceFromEnv(io.env),
      now: io.now,
      onProgress: progressBar(io),
    }),
  );
  const { result } = published;
  if (values.json) {
    io.out(`${JSON.stringify({ ...published, watch: watchCommand(result.model, result.id) })}\n`);
    return 0;
  }
  const where = `segserve_models/${result.model}/${result.version}`;
  const claims = Object.entries(result.metrics)
    .map(([k, v]) => `${k} ${fmt(v)}`)
    .join(', ');
  io.out(
    [
      `${published.uploaded ? 'uploaded' : 'already stored'} ${where}/model.onnx (${humanBytes(result.artifact.size)}, sha256 ${result.artifact.sha256.slice(0, 12)}…) and ${where}/model.json`,
      published.duplicate
        ? `experiment ${result.id} was already published (same Nats-Msg-Id inside the de-duplication window): stream ${published.stream} keeps seq ${published.seq}, nothing new was queued`
        : `published experiment ${result.id} to stream ${published.stream} (seq ${published.seq}, subject ${published.subject}), signed by ${key.getPublicKey()}`,
      `claimed: ${claims}`,
      `watch it:  ${watchCommand(result.model, result.id)}`,
      `decision:  npx segserve decisions ${result.model}`,
      '',
    ].join('\n'),
  );
  return 0;
}

/** The command that follows this result to its decision, as a person types it in the repository. */
function watchCommand(model: string, id: string): string {
  return `npx segserve rollout watch ${model} --until-done --experiment ${id}`;
}

function humanBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1048576) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1048576).toFixed(1)} MiB`;
}

async function keysCommand(argv: readonly string[], io: CliIo): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === 'generate') {
    const { values } = parseArgs({ args: rest, options: { out: { type: 'string' }, force: { type: 'boolean', default: false } }, strict: true });
    const keys = generateSigningKeys();
    if (values.out) {
      // 0600 and no overwrite unless asked: the seed is the publisher's secret.
      await writeFile(values.out, `${keys.seed}\n`, { mode: 0o600, flag: values.force ? 'w' : 'wx' }).catch((err: unknown) => {
        throw new SegserveError('INVALID_INPUT', `cannot write ${values.out} (${err instanceof Error ? err.message : String(err)}; --force overwrites)`);
      });
      io.out(`seed written to ${values.out} (mode 0600): publishers use it with --seed-file or SEGSERVE_SIGNING_SEED\npublic key: ${keys.publicKey}\nadd the public key to the promoter's SEGSERVE_SIGNERS\n`);
    } else {
      io.out(`seed (secret; for SEGSERVE_SIGNING_SEED or a --seed-file): ${keys.seed}\npublic key (for the promoter's SEGSERVE_SIGNERS): ${keys.publicKey}\n`);
    }
    return 0;
  }
  if (sub === 'public') {
    const { values } = parseArgs({ args: rest, options: { 'seed-file': { type: 'string' } }, strict: true });
    io.out(`${signingKeyFromSeed(await readSeed(values['seed-file'], io.env)).getPublicKey()}\n`);
    return 0;
  }
  io.err(`${USAGE.keys}\n`);
  return 2;
}

async function decisionsCommand(argv: readonly string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseArgs({
    args: [...argv],
    options: { json: { type: 'boolean', default: false }, nats: { type: 'string' } },
    strict: true,
    allowPositionals: true,
  });
  const model = positionals[0];
  if (!model || positionals.length > 1 || !isValidModelName(model)) {
    io.err(`${USAGE.decisions}\n`);
    return 2;
  }
  const url = values.nats ?? natsUrlVar(io.env) ?? DEFAULT_NATS_URL;
  const records = await withNats(url, 'segserve-decisions', async (nc) => {
    const kv = await new Kvm(jetstream(nc)).open(NATS_NAMES.decisionsKv, { bindOnly: true }).catch(() => null);
    return kv ? new DecisionStore(kv).list(model) : [];
  });
  io.out(values.json ? `${JSON.stringify(records, null, 2)}\n` : decisionsTable(records));
  return 0;
}
