// JSON-lines logger shared by the promoter's processes (TEAM.md process conventions: one JSON
// object per line on stdout with level, time, service and msg).
import { writeLogLine } from '@segserve/proto';
import type { LogFields, Logger } from '../domain/ports.js';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

const ORDER: Readonly<Record<LogLevel, number>> = { debug: 10, info: 20, warn: 30, error: 40 };

export function isLogLevel(value: string): value is LogLevel {
  return value in ORDER;
}

export interface JsonLoggerOptions {
  readonly service: string;
  readonly level?: LogLevel;
  readonly write?: (line: string) => void;
  readonly clock?: () => Date;
  /** Fields added to every line. */
  readonly fields?: LogFields;
}

export function jsonLogger(options: JsonLoggerOptions): Logger {
  const min = ORDER[options.level ?? 'info'];
  const write = options.write ?? writeLogLine;
  const clock = options.clock ?? (() => new Date());
  const emit = (level: LogLevel) => (msg: string, fields?: LogFields) => {
    if (ORDER[level] < min) return;
    const record = { level, time: clock().toISOString(), service: options.service, msg, ...options.fields, ...fields };
    write(`${JSON.stringify(record, errorReplacer)}\n`);
  };
  return { debug: emit('debug'), info: emit('info'), warn: emit('warn'), error: emit('error') };
}

/** Errors serialise as their message (and code), never as `{}`. */
function errorReplacer(_key: string, value: unknown): unknown {
  if (value instanceof Error) {
    const code = (value as { code?: unknown }).code;
    return code === undefined ? value.message : `${value.message} (${String(code)})`;
  }
  return value;
}

export const silentLogger: Logger = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };
