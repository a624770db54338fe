// JSON-line logs on stdout, the format every segserve process shares (TEAM.md):
// {"level":"info","time":"…","service":"gateway","msg":"…", …fields}.
import { writeLogLine } from '@segserve/proto';
import type { LogLevel } from './config.js';

export type LogFields = Readonly<Record<string, unknown>>;

export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  /** An info line written at every level: start-up contracts (`listening`) tools wait for. */
  announce(msg: string, fields?: LogFields): void;
  child(fields: LogFields): Logger;
}

const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

/** Errors (with their causes) as plain objects: JSON.stringify drops Error properties. */
export function serializeError(err: unknown, depth = 0): unknown {
  if (!(err instanceof Error)) return err;
  const out: Record<string, unknown> = { name: err.name, message: err.message };
  const code = (err as { code?: unknown }).code;
  if (code !== undefined) out['code'] = code;
  if (err.stack) out['stack'] = err.stack;
  if (err.cause !== undefined && depth < 3) out['cause'] = serializeError(err.cause, depth + 1);
  return out;
}

export interface LoggerOptions {
  readonly level: LogLevel;
  readonly service: string;
  readonly write?: (line: string) => void;
  readonly now?: () => Date;
}

export function createLogger(options: LoggerOptions, bound: LogFields = {}): Logger {
  const write = options.write ?? writeLogLine;
  const now = options.now ?? (() => new Date());
  const min = RANK[options.level];
  const log = (level: LogLevel, msg: string, fields?: LogFields, always = false): void => {
    if (RANK[level] < min && !always) return;
    const record: Record<string, unknown> = { level, time: now().toISOString(), service: options.service, msg, ...bound };
    for (const [k, v] of Object.entries(fields ?? {})) record[k] = v instanceof Error ? serializeError(v) : v;
    write(`${JSON.stringify(record)}\n`);
  };
  return {
    debug: (m, f) => log('debug', m, f),
    info: (m, f) => log('info', m, f),
    warn: (m, f) => log('warn', m, f),
    error: (m, f) => log('error', m, f),
    announce: (m, f) => log('info', m, f, true),
    child: (fields) => createLogger(options, { ...bound, ...fields }),
  };
}
