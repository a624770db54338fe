// Environment → one frozen, validated configuration (STYLE.md "Configuration"). Parsed from an
// injected env so that tests need no process.env; a bad value or an unknown SEGSERVE_* name
// fails start-up with a message naming the variable.

import { DEFAULT_MAX_MESSAGE_BYTES, isValidModelName, isValidModelVersion, unknownSegserveVars } from '@segserve/proto';
import path from 'node:path';
import type { ImageLimits } from './domain/image-cost.js';

import { LOG_LEVELS, type LogLevel } from '@segserve/runtime';

export type ModelSource =
  | { readonly kind: 'directory'; readonly dir: string; readonly sha256: string | undefined }
  | {
      readonly kind: 'nats';
      readonly url: string;
      readonly name: string;
      readonly version: string;
      readonly sha256: string | undefined;
      readonly cacheDir: string;
    };

export interface OrtSettings {
  /**
   * onnxruntime sessions, i.e. model runs at once (≤ maxConcurrency). The other admitted
   * requests decode, preprocess, postprocess and encode meanwhile, and wait for a session with
   * their input tensor: one run's activations at a time is what keeps a full-size pod small.
   */
  readonly sessions: number;
  readonly intraOpThreads: number;
  readonly interOpThreads: number;
  /** onnxruntime's CPU arena: faster, but keeps peak activations resident (DESIGN.md §10). */
  readonly arena: boolean;
  readonly memPattern: boolean;
}

export interface InferenceConfig {
  readonly host: string;
  readonly grpcPort: number;
  readonly metricsPort: number;
  readonly model: ModelSource;
  readonly maxConcurrency: number;
  readonly maxQueue: number;
  readonly queueTimeoutMs: number;
  readonly maxInputPixels: number;
  /** How far an image's aspect ratio may be from the model input's (either way). */
  readonly maxAspectFactor: number;
  /** The memory limit where no cgroup sets one (the admission budget is derived from it). */
  readonly memoryLimitBytes: number;
  /** Fraction of the memory limit kept free of admission charges (V8 heap growth, gRPC buffers, fragmentation). */
  readonly memoryHeadroom: number;
  readonly maxMessageBytes: number;
  readonly shutdownGraceMs: number;
  readonly maxConnectionAgeMs: number;
  readonly maxConnectionAgeGraceMs: number;
  readonly ort: OrtSettings;
  readonly logLevel: LogLevel;
  /** Test-only fault injection for canary tests; both zero in production. */
  readonly fault: { readonly delayMs: number; readonly errorRatio: number };
}

export const DEFAULTS = {
  host: '0.0.0.0',
  grpcPort: 50051,
  metricsPort: 9100,
  /** Waiting requests hold only their compressed bytes, so the queue is cheap in memory. */
  maxQueue: 16,
  queueTimeoutMs: 10_000,
  /** 24 MP (6000×4000): larger images are refused before decoding (RELIABILITY.md 6). */
  maxInputPixels: 24_000_000,
  /**
   * A panorama of 12:1 passes on a 3:2 model; a 24000000×1 strip (seconds of CPU for a
   * one-row smear) does not.
   */
  maxAspectFactor: 8,
  /** The pod's limit (deploy/), for a process that runs without a memory cgroup. */
  memoryLimitMb: 512,
  /** Kept out of the admission budget: see docs/benchmarks.md, "Admission by cost". */
  memoryHeadroom: 0.1,
  maxMessageBytes: DEFAULT_MAX_MESSAGE_BYTES,
  /** Within Kubernetes' default 30 s termination grace. */
  shutdownGraceMs: 20_000,
  /** Clients re-resolve at least this often, so new pods get traffic (RELIABILITY.md 18). */
  maxConnectionAgeMs: 60_000,
  /** Time in-flight calls get on an aged connection before it is closed. */
  maxConnectionAgeGraceMs: 30_000,
  /**
   * One model run at a time, with every CPU: at 1152×768 a run needs ~100 MB of activations;
   * two sessions peaked at 400–406 MB against 286–311 MB for 10–20 % more throughput, and the
   * single-image latency halves (docs/benchmarks.md, "Memory").
   */
  sessions: 1,
  interOpThreads: 1,
  /** Keeps peak activations resident: +10–25 % throughput at 1152×768 for 45–110 MB more peak RSS. */
  arena: false,
  /**
   * With one session and a fixed input shape the planned allocation is reused run after run:
   * +10–25 % throughput at 1152×768 for about the same peak RSS (docs/benchmarks.md, "Memory").
   */
  memPattern: true,
  logLevel: 'info' as LogLevel,
} as const;

/** What the host tells us, measured by the caller (main.ts) so that parsing stays pure. */
export interface SystemFacts {
  /** CPUs we may use: the cgroup quota, else os.availableParallelism(). */
  readonly cpuLimit: number;
  /** Parent of the default object-store cache directory. */
  readonly tmpDir: string;
}

type Env = Readonly<Record<string, string | undefined>>;

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

function read(env: Env, name: string): string | undefined {
  const v = env[name];
  return v === undefined || v.trim() === '' ? undefined : v.trim();
}

function int(env: Env, name: string, fallback: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const raw = read(env, name);
  if (raw === undefined) return fallback;
  if (!/^\d+$/.test(raw)) throw new ConfigError(`${name}: '${raw}' is not a non-negative integer`);
  const v = Number(raw);
  if (v < min || v > max) throw new ConfigError(`${name}: ${v} is outside ${min}..${max}`);
  return v;
}

function ratio(env: Env, name: string): number {
  const raw = read(env, name);
  if (raw === undefined) return 0;
  const v = Number(raw);
  if (!Number.isFinite(v) || v < 0 || v > 1) throw new ConfigError(`${name}: '${raw}' is not a number in 0..1`);
  return v;
}

function bool(env: Env, name: string, fallback: boolean): boolean {
  const raw = read(env, name)?.toLowerCase();
  if (raw === undefined) return fallback;
  if (['1', 'true', 'yes', 'on'].includes(raw)) return true;
  if (['0', 'false', 'no', 'off'].includes(raw)) return false;
  throw new ConfigError(`${name}: '${raw}' is not a boolean (true/false)`);
}

function sha256(env: Env, name: string): string | undefined {
  const raw = read(env, name)?.toLowerCase();
  if (raw !== undefined && !/^[0-9a-f]{64}$/.test(raw)) throw new ConfigError(`${name}: not a hex sha256 digest`);
  return raw;
}

function modelSource(env: Env, system: SystemFacts): ModelSource {
  const digest = sha256(env, 'SEGSERVE_MODEL_SHA256');
  const dir = read(env, 'SEGSERVE_MODEL_DIR');
  // A directory wins: SEGSERVE_NATS_URL is shared by every service of a local stack.
  if (dir !== undefined) return { kind: 'directory', dir: path.resolve(dir), sha256: digest };
  const url = read(env, 'SEGSERVE_NATS_URL');
  const name = read(env, 'SEGSERVE_MODEL_NAME');
  const version = read(env, 'SEGSERVE_MODEL_VERSION');
  if (url === undefined || name === undefined || version === undefined) {
    throw new ConfigError('no model: set SEGSERVE_MODEL_DIR (or --model <dir>), or SEGSERVE_NATS_URL with SEGSERVE_MODEL_NAME and SEGSERVE_MODEL_VERSION');
  }
  if (!isValidModelName(name)) throw new ConfigError(`SEGSERVE_MODEL_NAME: '${name}' is not a valid model name`);
  if (!isValidModelVersion(version)) throw new ConfigError(`SEGSERVE_MODEL_VERSION: '${version}' is not a valid version`);
  const cacheDir = read(env, 'SEGSERVE_MODEL_CACHE_DIR') ?? path.join(system.tmpDir, 'segserve-models');
  return { kind: 'nats', url, name, version, sha256: digest, cacheDir: path.resolve(cacheDir) };
}

export function parseConfig(env: Env, system: SystemFacts): InferenceConfig {
  const unknown = unknownSegserveVars(env);
  if (unknown.length > 0) throw new ConfigError(`unknown variable${unknown.length > 1 ? 's' : ''} ${unknown.join(', ')} (a typo?)`);
  const cpu = Math.max(1, Math.floor(system.cpuLimit));
  const maxConcurrency = int(env, 'SEGSERVE_MAX_CONCURRENCY', cpu, 1, 256);
  const sessions = Math.min(maxConcurrency, int(env, 'SEGSERVE_ORT_SESSIONS', DEFAULTS.sessions, 1, 256));
  const logLevel = (read(env, 'SEGSERVE_LOG_LEVEL')?.toLowerCase() ?? DEFAULTS.logLevel) as LogLevel;
  if (!(LOG_LEVELS as readonly string[]).includes(logLevel)) throw new ConfigError(`SEGSERVE_LOG_LEVEL: '${logLevel}' is not one of ${LOG_LEVELS.join(', ')}`);
  const config: InferenceConfig = {
    host: read(env, 'SEGSERVE_HOST') ?? DEFAULTS.host,
    grpcPort: int(env, 'SEGSERVE_GRPC_PORT', DEFAULTS.grpcPort, 0, 65535),
    metricsPort: int(env, 'SEGSERVE_METRICS_PORT', DEFAULTS.metricsPort, 0, 65535),
    model: modelSource(env, system),
    maxConcurrency,
    maxQueue: int(env, 'SEGSERVE_MAX_QUEUE', DEFAULTS.maxQueue, 0, 100_000),
    queueTimeoutMs: int(env, 'SEGSERVE_QUEUE_TIMEOUT_MS', DEFAULTS.queueTimeoutMs, 1, 3_600_000),
    maxInputPixels: int(env, 'SEGSERVE_MAX_INPUT_PIXELS', DEFAULTS.maxInputPixels, 1, 2 ** 31),
    maxAspectFactor: int(env, 'SEGSERVE_MAX_ASPECT_FACTOR', DEFAULTS.maxAspectFactor, 1, 1_000_000),
    memoryLimitBytes: int(env, 'SEGSERVE_MEMORY_LIMIT_MB', DEFAULTS.memoryLimitMb, 64, 1_048_576) * 2 ** 20,
    memoryHeadroom: DEFAULTS.memoryHeadroom,
    maxMessageBytes: int(env, 'SEGSERVE_MAX_MESSAGE_BYTES', DEFAULTS.maxMessageBytes, 1024, 2 ** 31 - 1),
    shutdownGraceMs: int(env, 'SEGSERVE_SHUTDOWN_GRACE_MS', DEFAULTS.shutdownGraceMs, 0, 3_600_000),
    maxConnectionAgeMs: int(env, 'SEGSERVE_MAX_CONNECTION_AGE_MS', DEFAULTS.maxConnectionAgeMs, 1000, 2 ** 31 - 1),
    maxConnectionAgeGraceMs: DEFAULTS.maxConnectionAgeGraceMs,
    ort: {
      sessions,
      // Concurrent runs share the CPUs: N runs × T threads should not exceed the quota.
      intraOpThreads: int(env, 'SEGSERVE_INTRA_OP_THREADS', Math.max(1, Math.floor(cpu / sessions)), 1, 256),
      interOpThreads: int(env, 'SEGSERVE_INTER_OP_THREADS', DEFAULTS.interOpThreads, 1, 256),
      arena: bool(env, 'SEGSERVE_ORT_ARENA', DEFAULTS.arena),
      memPattern: bool(env, 'SEGSERVE_ORT_MEM_PATTERN', DEFAULTS.memPattern),
    },
    logLevel,
    fault: { delayMs: int(env, 'SEGSERVE_FAULT_DELAY_MS', 0, 0, 600_000), errorRatio: ratio(env, 'SEGSERVE_FAULT_ERROR_RATIO') },
  };
  return deepFreeze(config);
}

function deepFreeze<T extends object>(value: T): T {
  for (const v of Object.values(value)) if (v !== null && typeof v === 'object') deepFreeze(v as object);
  return Object.freeze(value);
}

/** CLI flags of `segserve inference`, each overriding one variable. */
export const FLAG_TO_ENV: Readonly<Record<string, string>> = {
  '--model': 'SEGSERVE_MODEL_DIR',
  '--grpc-port': 'SEGSERVE_GRPC_PORT',
  '--metrics-port': 'SEGSERVE_METRICS_PORT',
  '--host': 'SEGSERVE_HOST',
  '--max-concurrency': 'SEGSERVE_MAX_CONCURRENCY',
  '--max-queue': 'SEGSERVE_MAX_QUEUE',
  '--queue-timeout-ms': 'SEGSERVE_QUEUE_TIMEOUT_MS',
  '--log-level': 'SEGSERVE_LOG_LEVEL',
};

/** Applies `--flag value` / `--flag=value` pairs over env; unknown flags are errors. */
export function applyFlags(env: Env, argv: readonly string[], flags: Readonly<Record<string, string>> = FLAG_TO_ENV): Record<string, string | undefined> {
  const out: Record<string, string | undefined> = { ...env };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const eq = arg.indexOf('=');
    const flag = eq > 0 ? arg.slice(0, eq) : arg;
    const name = flags[flag];
    if (name === undefined) throw new ConfigError(`unknown option '${flag}' (options: ${Object.keys(flags).join(', ')})`);
    const value = eq > 0 ? arg.slice(eq + 1) : argv[++i];
    if (value === undefined) throw new ConfigError(`option ${flag} needs a value`);
    out[name] = value;
  }
  return out;
}

/** The limits every upload is checked against before it is decoded. */
export function imageLimits(config: Pick<InferenceConfig, 'maxInputPixels' | 'maxAspectFactor'>): ImageLimits {
  return { maxPixels: config.maxInputPixels, maxAspectFactor: config.maxAspectFactor };
}
