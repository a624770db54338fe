// The one logger of every segserve process: JSON lines on stdout,
// {"level","time","service","msg", …bound fields, …fields}. One Logger interface, bound fields
// composed with child(), and one error serialiser: an Error anywhere in the fields (by
// convention under the key `error`) is written as {name, message, code?, stack?, cause?}.
// Never pass image bytes or tensors as fields.
import { writeLogLine } from './log-line.js';

export const LOG_LEVELS = ['debug', 'info', 'warn', 'error'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export function isLogLevel(value: string): value is LogLevel {
  return (LOG_LEVELS as readonly string[]).includes(value);
}

export type LogFields = Readonly<Record<string, unknown>>;

export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  /** An info line written at every level: the start-up line tools wait for. */
  announce(msg: string, fields?: LogFields): void;
  /** A logger that adds `fields` to every line. */
  child(fields: LogFields): Logger;
}

const RANK: Readonly<Record<LogLevel, number>> = { debug: 10, info: 20, warn: 30, error: 40 };

/** An error (with its cause chain) as a plain object: JSON.stringify drops Error properties. */
export function serializeError(err: unknown, depth = 0): unknown {
  if (!(err instanceof Error)) return err;
  const out: Record<string, unknown> = { name: err.name, message: err.message };
  const code = (err as { code?: unknown }).code;
  if (code !== undefined) out['code'] = code;
  if (err.stack !== undefined) out['stack'] = err.stack;
  if (err.cause !== undefined && depth < 3) out['cause'] = serializeError(err.cause, depth + 1);
  return out;
}

const errorReplacer = (_key: string, value: unknown): unknown => (value instanceof Error ? serializeError(value) : value);

export interface LoggerOptions {
  readonly service: string;
  /** Lines below this level are dropped (announce() always passes). Default info. */
  readonly level?: LogLevel;
  /** Where lines go; default stdout, EPIPE-safe. */
  readonly write?: (line: string) => void;
  readonly now?: () => Date;
  /** Fields on every line. */
  readonly fields?: LogFields;
}

export function createLogger(options: LoggerOptions): Logger {
  const write = options.write ?? writeLogLine;
  const now = options.now ?? (() => new Date());
  const min = RANK[options.level ?? 'info'];
  const bound = options.fields ?? {};
  const log = (level: LogLevel, msg: string, fields: LogFields | undefined, always = false): void => {
    if (RANK[level] < min && !always) return;
    const record = { level, time: now().toISOString(), service: options.service, msg, ...bound, ...fields };
    write(`${JSON.stringify(record, errorReplacer)}\n`);
  };
  return {
    debug: (m, f) => log('debug', m, f),
    info: (m, f) => log('info', m, f),
    warn: (m, f) => log('warn', m, f),
    error: (m, f) => log('error', m, f),
    announce: (m, f) => log('info', m, f, true),
    child: (fields) => createLogger({ ...options, fields: { ...bound, ...fields } }),
  };
}

/** Drops everything (tests that do not look at logs). */
export const silentLogger: Logger = {
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
  announce: () => undefined,
  child: () => silentLogger,
};
