// JSON-line logs on stdout (TEAM.md conventions): {"level","time","service","msg",…fields}.
// Never pass image bytes or tensors as fields; errors are logged with their cause chain.

import { writeLogLine } from '@segserve/proto';
import type { LogLevel } from '../config.js';

export type LogFields = Readonly<Record<string, unknown>>;

export interface Logger {
  debug(msg: string, fields?: LogFields): void;
  info(msg: string, fields?: LogFields): void;
  warn(msg: string, fields?: LogFields): void;
  error(msg: string, fields?: LogFields): void;
  readonly level: LogLevel;
}

const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

/** Error → plain fields, following `cause` (the client never sees these, the log does). */
export function errorFields(err: unknown, depth = 0): Record<string, unknown> {
  if (!(err instanceof Error)) return { error: String(err) };
  const out: Record<string, unknown> = { error: err.message, error_name: err.name };
  if (err.stack !== undefined) out['stack'] = err.stack.split('\n').slice(0, 8).join('\n');
  if (err.cause !== undefined && depth < 3) out['cause'] = errorFields(err.cause, depth + 1);
  return out;
}

export function createLogger(options: { level: LogLevel; service: string; write?: (line: string) => void; now?: () => Date }): Logger {
  const write = options.write ?? writeLogLine;
  const now = options.now ?? (() => new Date());
  const min = RANK[options.level];
  const log = (level: LogLevel) => (msg: string, fields: LogFields = {}) => {
    if (RANK[level] < min) return;
    write(`${JSON.stringify({ level, time: now().toISOString(), service: options.service, msg, ...fields })}\n`);
  };
  return { debug: log('debug'), info: log('info'), warn: log('warn'), error: log('error'), level: options.level };
}
