// The one configuration toolkit: typed readers of SEGSERVE_* variables from an injected
// environment, each failing with a ConfigError that names the variable (nats.js `options.ts`
// style: one parser per kind of value, defaults as named constants in each service's config.ts).
// Services compose these into one frozen config object; only main.ts passes process.env.
import { parseNatsUrl, SEGSERVE_ENV_VARS } from '@segserve/proto';
import { isLogLevel, LOG_LEVELS, type LogLevel } from './logger.js';

export type Env = Readonly<Record<string, string | undefined>>;

/** A configuration value that cannot be used; `variable` names what to fix. */
export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(
    readonly variable: string,
    message: string,
    options?: ErrorOptions,
  ) {
    super(`${variable}: ${message}`, options);
  }
}

/** The value of `name`, trimmed; unset and empty are the same (undefined). */
export function readVar(env: Env, name: string): string | undefined {
  const v = env[name]?.trim();
  return v === undefined || v === '' ? undefined : v;
}

/** The value of `name`, or a ConfigError saying it is required (`hint`: an example). */
export function requireVar(env: Env, name: string, hint?: string): string {
  const v = readVar(env, name);
  if (v === undefined) throw new ConfigError(name, `required${hint ? ` (${hint})` : ''}`);
  return v;
}

export interface IntRange {
  readonly min: number;
  readonly max?: number;
}

/** A whole number in [min, max]; `fallback` when unset. */
export function intVar(env: Env, name: string, fallback: number, range: IntRange): number {
  const raw = readVar(env, name);
  if (raw === undefined) return fallback;
  if (!/^\d+$/.test(raw)) throw new ConfigError(name, `'${raw}' is not a whole number`);
  const v = Number(raw);
  const max = range.max ?? Number.MAX_SAFE_INTEGER;
  if (v < range.min || v > max) throw new ConfigError(name, `${v} is outside ${range.min}–${max}`);
  return v;
}

/** A TCP port, 0–65535 (0: any free port, reported in the start-up line). */
export function portVar(env: Env, name: string, fallback: number): number {
  return intVar(env, name, fallback, { min: 0, max: 65_535 });
}

/** A number in [0, 1]. */
export function ratioVar(env: Env, name: string, fallback: number): number {
  const raw = readVar(env, name);
  if (raw === undefined) return fallback;
  const v = Number(raw);
  if (!Number.isFinite(v) || v < 0 || v > 1) throw new ConfigError(name, `'${raw}' is not a number in 0..1`);
  return v;
}

const TRUE = ['1', 'true', 'yes', 'on'];
const FALSE = ['0', 'false', 'no', 'off'];

export function boolVar(env: Env, name: string, fallback: boolean): boolean {
  const raw = readVar(env, name)?.toLowerCase();
  if (raw === undefined) return fallback;
  if (TRUE.includes(raw)) return true;
  if (FALSE.includes(raw)) return false;
  throw new ConfigError(name, `'${raw}' is not a boolean (true/false)`);
}

/** Comma-separated, blanks dropped (items may not contain commas). */
export function listVar(env: Env, name: string): string[] {
  return (readVar(env, name) ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

/** One of `allowed`; `fallback` when unset. */
export function enumVar<T extends string>(env: Env, name: string, allowed: readonly T[], fallback: T): T {
  const raw = readVar(env, name);
  if (raw === undefined) return fallback;
  if (!(allowed as readonly string[]).includes(raw)) throw new ConfigError(name, `'${raw}' is not one of ${allowed.join(', ')}`);
  return raw as T;
}

/** SEGSERVE_LOG_LEVEL: debug, info, warn or error (case-insensitive). */
export function logLevelVar(env: Env, fallback: LogLevel = 'info', name = 'SEGSERVE_LOG_LEVEL'): LogLevel {
  const raw = readVar(env, name)?.toLowerCase();
  if (raw === undefined) return fallback;
  if (!isLogLevel(raw)) throw new ConfigError(name, `'${raw}' is not one of ${LOG_LEVELS.join(', ')}`);
  return raw;
}

/** An absolute URL with one of `schemes` (without '://'). */
export function urlVar(env: Env, name: string, schemes: readonly string[]): string | undefined {
  const v = readVar(env, name);
  if (v === undefined) return undefined;
  let parsed: URL;
  try {
    parsed = new URL(v);
  } catch {
    throw new ConfigError(name, `'${v}' is not a URL`);
  }
  if (!schemes.includes(parsed.protocol.replace(/:$/, ''))) throw new ConfigError(name, `'${v}' must start with ${schemes.map((s) => `${s}://`).join(' or ')}`);
  return v;
}

/**
 * SEGSERVE_NATS_URL: `nats://[user:pass@]host:4222[,nats://…]` (also tls://, ws://, wss://, or a
 * bare host:port). Credentials never appear in the error message.
 */
export function natsUrlVar(env: Env, name = 'SEGSERVE_NATS_URL'): string | undefined {
  const v = readVar(env, name);
  if (v === undefined) return undefined;
  try {
    const { servers } = parseNatsUrl(v);
    if (servers.some((srv) => !/^(nats|tls|ws|wss):\/\/[^/]+$/.test(srv))) throw new Error('scheme');
  } catch {
    throw new ConfigError(name, `'${v.replace(/\/\/[^@/]*@/g, '//***@')}' is not a NATS URL (nats://host:4222[,nats://…])`);
  }
  return v;
}

/** A hex sha256 digest, lower-cased. */
export function sha256Var(env: Env, name: string): string | undefined {
  const raw = readVar(env, name)?.toLowerCase();
  if (raw !== undefined && !/^[0-9a-f]{64}$/.test(raw)) throw new ConfigError(name, 'not a hex sha256 digest');
  return raw;
}

/**
 * Fails on the first SEGSERVE_* name no segserve process knows (a typo). Names another service
 * reads are fine, so one environment can serve a whole local stack.
 */
export function checkUnknownVars(env: Env, known: readonly string[] = SEGSERVE_ENV_VARS): void {
  const unknown = Object.keys(env).filter((k) => k.startsWith('SEGSERVE_') && !known.includes(k));
  if (unknown.length > 0) throw new ConfigError(unknown[0]!, `unknown variable (a typo?)${unknown.length > 1 ? `; also ${unknown.slice(1).join(', ')}` : ''}; the known ones are listed in proto/src/env.ts`);
}

/** Freezes `value` and every object in it. */
export function deepFreeze<T extends object>(value: T): T {
  for (const v of Object.values(value)) if (v !== null && typeof v === 'object' && !Object.isFrozen(v)) deepFreeze(v as object);
  return Object.freeze(value);
}
