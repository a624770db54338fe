// `segserve rollout status|watch <model>` and `segserve rollback <model>`: read the rollout
// state from KV (the same value the gateways route by), and ask a promoter to roll back.
import { parseArgs } from 'node:util';
import { Kvm, type KV } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/transport-node';
import { NATS_NAMES, TERMINAL_DECISION_STATUSES, isValidModelName, redactNatsUrl, type DecisionRecord } from '@segserve/proto';
import { durationMs, isSettled, requestRollback, RolloutStore, type RolloutRecord } from '@segserve/promoter';
import { checkUnknownVars, ConfigError, natsUrlVar } from '@segserve/runtime';
import { DEFAULT_NATS_URL, withNats } from './nats.js';
import { explainCode, statusText, watchLine } from './status-format.js';

export interface CommandIo {
  readonly out: (text: string) => void;
  readonly err: (text: string) => void;
}

const stdio: CommandIo = { out: (t) => process.stdout.write(t), err: (t) => process.stderr.write(t) };

interface Context {
  readonly natsUrl: string;
  readonly io?: CommandIo;
}

class UsageError extends Error {}

function modelArg(positionals: readonly string[], usage: string): string {
  const [model, ...extra] = positionals;
  if (!model || extra.length > 0) throw new UsageError(usage);
  if (!isValidModelName(model)) throw new UsageError(`'${model}' is not a model name`);
  return model;
}

function withRollouts<T>(natsUrl: string, fn: (nc: NatsConnection, rollouts: KV) => Promise<T>): Promise<T> {
  return withNats(
    natsUrl,
    'segserve-cli',
    async (nc) => {
      let rollouts: KV;
      try {
        rollouts = await new Kvm(nc).open(NATS_NAMES.rolloutsKv);
      } catch (err) {
        // The bucket is made by the first promoter: say so instead of "stream not found".
        if (/stream not found/i.test(err instanceof Error ? err.message : '')) throw new Error(`no rollout state on ${redactNatsUrl(natsUrl)}: KV ${NATS_NAMES.rolloutsKv} does not exist yet (start \`segserve promoter\` or \`segserve stack\`)`, { cause: err });
        throw err;
      }
      return fn(nc, rollouts);
    },
    { follow: true },
  );
}

async function guard(io: CommandIo, fn: () => Promise<number>): Promise<number> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof UsageError) {
      io.err(`${err.message}\n`);
      return 2;
    }
    io.err(`${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  }
}

export function runStatusCommand(argv: readonly string[], ctx: Context): Promise<number> {
  const io = ctx.io ?? stdio;
  return guard(io, async () => {
    const { values, positionals } = parseArgs({ args: [...argv], options: { json: { type: 'boolean' } }, allowPositionals: true });
    const model = modelArg(positionals, 'usage: segserve rollout status <model> [--json]');
    return withRollouts(ctx.natsUrl, async (_nc, kv) => {
      const stored = await new RolloutStore(kv).get(model);
      if (!stored) {
        io.err(`${model}: no rollout state (no version of it was ever served by a promoter)\n`);
        return 1;
      }
      io.out(values.json ? `${JSON.stringify(stored.record)}\n` : statusText(stored.record, new Date()));
      return 0;
    });
  });
}

/** Exit code of a settled rollout: 0 Succeeded (or nothing ever ran), 1 Failed. */
function settledCode(s: RolloutRecord): number {
  return s.phase === 'Failed' ? 1 : 0;
}

/**
 * `rollout watch`: prints each change of the state. With --until-done it exits when the
 * rollout is settled (0 Succeeded, 1 Failed); with --experiment <id>, when that experiment's
 * decision is final (so a result rejected before any rollout ends the wait too, and an older
 * finished rollout does not).
 */
export function runWatchCommand(argv: readonly string[], ctx: Context & { readonly interactive?: boolean }): Promise<number> {
  const io = ctx.io ?? stdio;
  return guard(io, async () => {
    const { values, positionals } = parseArgs({
      args: [...argv],
      options: { json: { type: 'boolean' }, 'until-done': { type: 'boolean' }, experiment: { type: 'string' }, timeout: { type: 'string' } },
      allowPositionals: true,
    });
    const model = modelArg(positionals, 'usage: segserve rollout watch <model> [--until-done] [--experiment <id>] [--timeout <30m>] [--json]');
    const untilDone = values['until-done'] === true || values.experiment !== undefined;
    const timeoutMs = values.timeout ? durationMs(values.timeout) : undefined;
    return withRollouts(ctx.natsUrl, async (nc, kv) => {
      const stop = new AbortController();
      const timer = timeoutMs ? setTimeout(() => stop.abort(), timeoutMs) : undefined;
      let code: number | undefined;
      const finish = (c: number): void => {
        code ??= c;
        stop.abort();
      };
      const decisions = values.experiment ? await new Kvm(nc).open(NATS_NAMES.decisionsKv) : undefined;
      const followDecision = decisions && values.experiment ? watchDecision(decisions, values.experiment, stop.signal, (d) => {
        io.out(values.json ? `${JSON.stringify({ decision: d })}\n` : `decision  ${d.status}  [${d.reason_code}] ${d.reason}\n  ${explainCode(d.reason_code)}\n`);
        finish(d.status === 'promoted' ? 0 : 1);
      }) : Promise.resolve();
      let last = '';
      try {
        for await (const { record } of new RolloutStore(kv).watch(model, stop.signal)) {
          const line = values.json ? JSON.stringify(record) : watchLine(record, new Date());
          const key = JSON.stringify([record.phase, record.step, record.canary?.weight, record.last_check_at, record.reason, record.restore, record.rollback_requested, record.stable?.version]);
          if (key !== last) io.out(`${line}\n`);
          last = key;
          if (untilDone && !values.experiment && isSettled(record)) finish(settledCode(record));
        }
      } finally {
        stop.abort();
        clearTimeout(timer);
        await followDecision;
      }
      if (code === undefined && untilDone) {
        io.err(`${model}: not done after ${values.timeout ?? '?'}\n`);
        return 3;
      }
      return code ?? 0;
    });
  });
}

async function watchDecision(kv: KV, id: string, signal: AbortSignal, done: (d: DecisionRecord) => void): Promise<void> {
  const it = await kv.watch({ key: id });
  const stop = (): void => it.stop();
  signal.addEventListener('abort', stop, { once: true });
  for await (const e of it) {
    if (e.operation !== 'PUT' || e.length === 0) continue;
    const d = e.json<DecisionRecord>();
    if (TERMINAL_DECISION_STATUSES.includes(d.status)) {
      done(d);
      break;
    }
  }
  signal.removeEventListener('abort', stop);
}

/** `segserve rollback <model> [--reason <text>]`: asks the promoter, then waits for the restore. */
export function runRollbackCommand(argv: readonly string[], ctx: Context & { readonly waitMs?: number }): Promise<number> {
  const io = ctx.io ?? stdio;
  return guard(io, async () => {
    const { values, positionals } = parseArgs({ args: [...argv], options: { reason: { type: 'string' }, 'no-wait': { type: 'boolean' } }, allowPositionals: true });
    const model = modelArg(positionals, 'usage: segserve rollback <model> [--reason <text>] [--no-wait]');
    const reason = values.reason ?? 'manual rollback (no reason given)';
    return withRollouts(ctx.natsUrl, async (nc, kv) => {
      const answer = await requestRollback(nc, model, reason);
      if (!answer.ok) {
        io.err(`rollback refused: ${answer.message}\n`);
        return 1;
      }
      io.out(`${answer.message}\n`);
      if (values['no-wait']) return 0;
      const stop = new AbortController();
      const timer = setTimeout(() => stop.abort(), ctx.waitMs ?? 300_000);
      try {
        for await (const { record } of new RolloutStore(kv).watch(model, stop.signal)) {
          if (record.phase === 'Failed' && isSettled(record)) {
            io.out(`${model}: rolled back; stable ${record.stable?.version ?? '?'} serves at ${record.stable?.target ?? '?'} (${record.reason ?? reason})\n`);
            return 0;
          }
        }
      } finally {
        clearTimeout(timer);
      }
      io.err(`${model}: the rollback was requested but is not finished yet; see \`segserve rollout status ${model}\`\n`);
      return 1;
    });
  });
}

const USAGE: Readonly<Record<string, string>> = {
  rollout: 'usage: segserve rollout status <model> [--json]\n       segserve rollout watch <model> [--until-done] [--experiment <id>] [--timeout <30m>] [--json]',
  rollback: 'usage: segserve rollback <model> [--reason <text>] [--no-wait]',
};

/** `segserve rollout …` and `segserve rollback …` (the only place these read the environment). */
export async function run(command: string, argv: readonly string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(`${USAGE[command] ?? `segserve ${command}`}\n`);
    return 0;
  }
  let natsUrl: string;
  try {
    checkUnknownVars(process.env);
    natsUrl = natsUrlVar(process.env) ?? DEFAULT_NATS_URL;
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`segserve ${command}: configuration: ${err.message}\n`);
    return 2;
  }
  if (command === 'rollback') return runRollbackCommand(argv, { natsUrl });
  const [sub, ...rest] = argv;
  if (sub === 'status') return runStatusCommand(rest, { natsUrl });
  if (sub === 'watch') return runWatchCommand(rest, { natsUrl, interactive: process.stdout.isTTY });
  process.stderr.write(`${USAGE['rollout']}\n`);
  return 2;
}
