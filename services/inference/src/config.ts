// Environment → one frozen, validated configuration (docs/architecture.md#conventions). Parsed from an
// injected env so that tests need no process.env; a bad value or an unknown SEGSERVE_* name
// fails start-up with a message naming the variable.

import { DEFAULT_MAX_MESSAGE_BYTES, isValidModelName, isValidModelVersion } from '@segserve/proto';
import path from 'node:path';
import type { ArenaMode, ArenaPolicy } from './domain/arena.js';
import type { ImageLimits } from './domain/image-cost.js';

import { boolVar, checkUnknownVars, ConfigError, deepFreeze, intVar, logLevelVar, natsUrlVar, portVar, ratioVar, readVar, sha256Var, type Env, type LogLevel } from '@segserve/runtime';

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
  /**
   * onnxruntime's CPU arena: faster, but keeps a run's allocations resident; 'auto' turns it on
   * for models whose measured activations are small (domain/arena.ts).
   */
  readonly arena: ArenaMode;
  readonly memPattern: boolean;
  /** Intra-op threads spin between parallel sections instead of blocking (docs/benchmarks.md, "Spinning"). */
  readonly spinning: boolean;
}

/** What one onnxruntime session is created with: the arena decided. */
export type SessionSettings = Omit<OrtSettings, 'arena'> & { readonly arena: boolean };

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
  /** 24 MP (6000×4000): larger images are refused before decoding (docs/reliability.md item 6). */
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
  /** Clients re-resolve at least this often, so new pods get traffic (docs/reliability.md item 18). */
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
  /**
   * The arena makes runs faster but keeps a run's activations resident: worth it on models with
   * small activations, not at 1152×768 ("auto", domain/arena.ts; docs/benchmarks.md, "Memory" and
   * "Issue 15, seventh round").
   */
  arena: 'auto' as ArenaMode,
  /**
   * 'auto' turns the arena on when all sessions' activations (the warm-up run's growth) are at
   * most this share of the memory limit (docs/benchmarks.md, "Issue 15, seventh round").
   */
  arenaMaxShare: 0.05,
  /**
   * With one session and a fixed input shape the planned allocation is reused run after run:
   * faster at about the same peak RSS (docs/benchmarks.md, "Memory").
   */
  memPattern: true,
  spinning: false,
  logLevel: 'info' as LogLevel,
} as const;

/** What the host tells us, measured by the caller (main.ts) so that parsing stays pure. */
export interface SystemFacts {
  /** CPUs we may use: the cgroup quota, else os.availableParallelism(). */
  readonly cpuLimit: number;
  /** Parent of the default object-store cache directory. */
  readonly tmpDir: string;
}

export { ConfigError };

function modelSource(env: Env, system: SystemFacts): ModelSource {
  const digest = sha256Var(env, 'SEGSERVE_MODEL_SHA256');
  const dir = readVar(env, 'SEGSERVE_MODEL_DIR');
  // A directory wins: SEGSERVE_NATS_URL is shared by every service of a local stack.
  if (dir !== undefined) return { kind: 'directory', dir: path.resolve(dir), sha256: digest };
  const url = natsUrlVar(env);
  const name = readVar(env, 'SEGSERVE_MODEL_NAME');
  const version = readVar(env, 'SEGSERVE_MODEL_VERSION');
  if (url === undefined || name === undefined || version === undefined) {
    throw new ConfigError('SEGSERVE_MODEL_DIR', 'no model: set SEGSERVE_MODEL_DIR (or --model <dir>), or SEGSERVE_NATS_URL with SEGSERVE_MODEL_NAME and SEGSERVE_MODEL_VERSION');
  }
  if (!isValidModelName(name)) throw new ConfigError('SEGSERVE_MODEL_NAME', `'${name}' is not a valid model name`);
  if (!isValidModelVersion(version)) throw new ConfigError('SEGSERVE_MODEL_VERSION', `'${version}' is not a valid version`);
  const cacheDir = readVar(env, 'SEGSERVE_MODEL_CACHE_DIR') ?? path.join(system.tmpDir, 'segserve-models');
  return { kind: 'nats', url, name, version, sha256: digest, cacheDir: path.resolve(cacheDir) };
}

/** 'auto', or a boolean for 'on'/'off'. */
function arenaVar(env: Env, name: string, fallback: ArenaMode): ArenaMode {
  const raw = readVar(env, name)?.toLowerCase();
  if (raw === undefined) return fallback;
  if (raw === 'auto') return 'auto';
  try {
    return boolVar(env, name, false) ? 'on' : 'off';
  } catch {
    throw new ConfigError(name, `'${raw}' is neither auto nor a boolean (true/false)`);
  }
}

export function parseConfig(env: Env, system: SystemFacts): InferenceConfig {
  checkUnknownVars(env);
  const cpu = Math.max(1, Math.floor(system.cpuLimit));
  const maxConcurrency = intVar(env, 'SEGSERVE_MAX_CONCURRENCY', cpu, { min: 1, max: 256 });
  const sessions = Math.min(maxConcurrency, intVar(env, 'SEGSERVE_ORT_SESSIONS', DEFAULTS.sessions, { min: 1, max: 256 }));
  const logLevel = logLevelVar(env, DEFAULTS.logLevel);
  const config: InferenceConfig = {
    host: readVar(env, 'SEGSERVE_HOST') ?? DEFAULTS.host,
    grpcPort: portVar(env, 'SEGSERVE_GRPC_PORT', DEFAULTS.grpcPort),
    metricsPort: portVar(env, 'SEGSERVE_METRICS_PORT', DEFAULTS.metricsPort),
    model: modelSource(env, system),
    maxConcurrency,
    maxQueue: intVar(env, 'SEGSERVE_MAX_QUEUE', DEFAULTS.maxQueue, { min: 0, max: 100_000 }),
    queueTimeoutMs: intVar(env, 'SEGSERVE_QUEUE_TIMEOUT_MS', DEFAULTS.queueTimeoutMs, { min: 1, max: 3_600_000 }),
    maxInputPixels: intVar(env, 'SEGSERVE_MAX_INPUT_PIXELS', DEFAULTS.maxInputPixels, { min: 1, max: 2 ** 31 }),
    maxAspectFactor: intVar(env, 'SEGSERVE_MAX_ASPECT_FACTOR', DEFAULTS.maxAspectFactor, { min: 1, max: 1_000_000 }),
    memoryLimitBytes: intVar(env, 'SEGSERVE_MEMORY_LIMIT_MB', DEFAULTS.memoryLimitMb, { min: 64, max: 1_048_576 }) * 2 ** 20,
    memoryHeadroom: DEFAULTS.memoryHeadroom,
    maxMessageBytes: intVar(env, 'SEGSERVE_MAX_MESSAGE_BYTES', DEFAULTS.maxMessageBytes, { min: 1024, max: 2 ** 31 - 1 }),
    shutdownGraceMs: intVar(env, 'SEGSERVE_SHUTDOWN_GRACE_MS', DEFAULTS.shutdownGraceMs, { min: 0, max: 3_600_000 }),
    maxConnectionAgeMs: intVar(env, 'SEGSERVE_MAX_CONNECTION_AGE_MS', DEFAULTS.maxConnectionAgeMs, { min: 1000, max: 2 ** 31 - 1 }),
    maxConnectionAgeGraceMs: DEFAULTS.maxConnectionAgeGraceMs,
    ort: {
      sessions,
      // Concurrent runs share the CPUs: N runs × T threads should not exceed the quota.
      intraOpThreads: intVar(env, 'SEGSERVE_INTRA_OP_THREADS', Math.max(1, Math.floor(cpu / sessions)), { min: 1, max: 256 }),
      interOpThreads: intVar(env, 'SEGSERVE_INTER_OP_THREADS', DEFAULTS.interOpThreads, { min: 1, max: 256 }),
      arena: arenaVar(env, 'SEGSERVE_ORT_ARENA', DEFAULTS.arena),
      memPattern: boolVar(env, 'SEGSERVE_ORT_MEM_PATTERN', DEFAULTS.memPattern),
      spinning: boolVar(env, 'SEGSERVE_ORT_SPINNING', DEFAULTS.spinning),
    },
    logLevel,
    fault: { delayMs: intVar(env, 'SEGSERVE_FAULT_DELAY_MS', 0, { min: 0, max: 600_000 }), errorRatio: ratioVar(env, 'SEGSERVE_FAULT_ERROR_RATIO', 0) },
  };
  return deepFreeze(config);
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
    if (name === undefined) throw new ConfigError(flag, `unknown option (options: ${Object.keys(flags).join(', ')})`);
    const value = eq > 0 ? arg.slice(eq + 1) : argv[++i];
    if (value === undefined) throw new ConfigError(flag, 'needs a value');
    out[name] = value;
  }
  return out;
}

/** How the arena is chosen for this process (`limitBytes`: the cgroup's limit where one is set). */
export function arenaPolicy(config: Pick<InferenceConfig, 'ort' | 'memoryLimitBytes'>, limitBytes?: number): ArenaPolicy {
  return { mode: config.ort.arena, sessions: config.ort.sessions, limitBytes: limitBytes ?? config.memoryLimitBytes, maxShare: DEFAULTS.arenaMaxShare };
}

/** The limits every upload is checked against before it is decoded. */
export function imageLimits(config: Pick<InferenceConfig, 'maxInputPixels' | 'maxAspectFactor'>): ImageLimits {
  return { maxPixels: config.maxInputPixels, maxAspectFactor: config.maxAspectFactor };
}
