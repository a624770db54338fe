// The gateway's configuration: SEGSERVE_* environment → one frozen, validated object. Failing at
// start with the variable's name beats a gateway that half-works.
import { DEFAULT_MAX_MESSAGE_BYTES, isValidModelName, unknownSegserveVars, type RolloutState } from '@segserve/proto';
import { parseUpstreamsSpec, UpstreamsSpecError } from './domain/upstreams-spec.js';

import { LOG_LEVELS, type LogLevel } from '@segserve/runtime';

export interface RetryPolicy {
  /** Attempts in total, the first included (grpc-js caps this at 5). */
  readonly maxAttempts: number;
  readonly initialBackoffMs: number;
  readonly maxBackoffMs: number;
}

export interface GatewayConfig {
  /** Bind address of both servers. */
  readonly host: string;
  /** REST (upload page, /metrics); 0 = any free port. */
  readonly httpPort: number;
  /** gRPC; 0 = any free port. */
  readonly grpcPort: number;
  /** Routes from SEGSERVE_UPSTREAMS (empty when only NATS is used). */
  readonly staticRoutes: readonly RolloutState[];
  readonly natsUrl: string | undefined;
  /** Raw API keys; empty = open. Only ApiKeys (hashes) should hold them after start-up. */
  readonly apiKeys: readonly string[];
  readonly logLevel: LogLevel;
  /** Deadline of every upstream call unless the client asks for less, ms. */
  readonly deadlineMs: number;
  /** Model of POST /segmentator-api (the study's original route). */
  readonly defaultModel: string;
  /** gRPC max message size, both directions, both edges (DESIGN.md §4), bytes. */
  readonly maxMessageBytes: number;
  /** REST upload limit: what still fits one gRPC message with its envelope, bytes. */
  readonly maxUploadBytes: number;
  readonly retry: RetryPolicy;
  /** HTTP/2 keepalive ping interval towards upstreams, ms. */
  readonly keepaliveMs: number;
  /** SIGTERM: how long in-flight requests may take before the servers are forced down, ms. */
  readonly shutdownGraceMs: number;
  /** The memory limit to budget uploads against where no cgroup sets one, bytes. */
  readonly memoryLimitBytes: number;
}

export const DEFAULTS = {
  host: '0.0.0.0',
  httpPort: 8080,
  grpcPort: 9090,
  logLevel: 'info' as LogLevel,
  deadlineMs: 30_000, // a full-size image takes ~0.4 s; the rest is queueing under load
  defaultModel: 'facade-ads',
  maxMessageBytes: DEFAULT_MAX_MESSAGE_BYTES, // 32 MiB
  envelopeBytes: 4096, // model, version and framing around the image in a SegmentRequest
  retry: { maxAttempts: 4, initialBackoffMs: 50, maxBackoffMs: 1000 },
  keepaliveMs: 20_000,
  shutdownGraceMs: 10_000,
  memoryLimitMb: 512, // the gateway container's limit (deploy/k8s)
} as const;

/** Variables this service reads (the rest of SEGSERVE_ENV_VARS belong to other services). */
export const GATEWAY_ENV_VARS = [
  'SEGSERVE_HOST',
  'SEGSERVE_HTTP_PORT',
  'SEGSERVE_GRPC_PORT',
  'SEGSERVE_UPSTREAMS',
  'SEGSERVE_NATS_URL',
  'SEGSERVE_API_KEYS',
  'SEGSERVE_LOG_LEVEL',
  'SEGSERVE_DEADLINE_MS',
  'SEGSERVE_DEFAULT_MODEL',
  'SEGSERVE_MAX_MESSAGE_BYTES',
  'SEGSERVE_MEMORY_LIMIT_MB',
] as const;

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
  constructor(
    readonly variable: string,
    message: string,
  ) {
    super(`${variable}: ${message}`);
  }
}

type Env = Readonly<Record<string, string | undefined>>;

function value(env: Env, name: string): string | undefined {
  const v = env[name]?.trim();
  return v === undefined || v === '' ? undefined : v;
}

function integer(env: Env, name: string, fallback: number, min: number, max: number): number {
  const text = value(env, name);
  if (text === undefined) return fallback;
  if (!/^\d+$/.test(text)) throw new ConfigError(name, `'${text}' is not a whole number`);
  const n = Number(text);
  if (n < min || n > max) throw new ConfigError(name, `${n} is outside ${min}–${max}`);
  return n;
}

/** Parses the gateway's environment. `now` stamps the static routes' updated_at. */
export function loadConfig(env: Env, now: Date = new Date()): GatewayConfig {
  const unknown = unknownSegserveVars(env);
  if (unknown.length > 0) throw new ConfigError(unknown[0] ?? '', `unknown variable (a typo?); known: see proto/src/env.ts`);

  const upstreams = value(env, 'SEGSERVE_UPSTREAMS');
  let staticRoutes: RolloutState[] = [];
  if (upstreams !== undefined) {
    try {
      staticRoutes = parseUpstreamsSpec(upstreams, now.toISOString());
    } catch (err) {
      if (err instanceof UpstreamsSpecError) throw new ConfigError('SEGSERVE_UPSTREAMS', err.message);
      throw err;
    }
  }
  const natsUrl = value(env, 'SEGSERVE_NATS_URL');
  if (natsUrl !== undefined && !/^(nats|tls|ws|wss):\/\/|^[^:/\s]+:\d+$/.test(natsUrl.split(',')[0] ?? '')) {
    throw new ConfigError('SEGSERVE_NATS_URL', `'${natsUrl}' is not a NATS URL (nats://host:4222)`);
  }
  if (staticRoutes.length === 0 && natsUrl === undefined) {
    throw new ConfigError('SEGSERVE_UPSTREAMS', 'set SEGSERVE_UPSTREAMS (static routes) or SEGSERVE_NATS_URL (follow the rollout state); the gateway has nowhere to send requests');
  }

  const apiKeys = (value(env, 'SEGSERVE_API_KEYS') ?? '')
    .split(',')
    .map((k) => k.trim())
    .filter((k) => k.length > 0);
  // The key itself must never appear in an error message: name its position instead.
  apiKeys.forEach((k, i) => {
    if (k.length < 16) throw new ConfigError('SEGSERVE_API_KEYS', `key #${i + 1} is shorter than 16 characters`);
    if (/\s/.test(k)) throw new ConfigError('SEGSERVE_API_KEYS', `key #${i + 1} contains whitespace`);
  });

  const logLevel = (value(env, 'SEGSERVE_LOG_LEVEL') ?? DEFAULTS.logLevel) as LogLevel;
  if (!(LOG_LEVELS as readonly string[]).includes(logLevel)) throw new ConfigError('SEGSERVE_LOG_LEVEL', `'${String(logLevel)}' is not one of ${LOG_LEVELS.join(', ')}`);

  const defaultModel = value(env, 'SEGSERVE_DEFAULT_MODEL') ?? (staticRoutes.length === 1 ? staticRoutes[0]?.model : undefined) ?? DEFAULTS.defaultModel;
  if (!isValidModelName(defaultModel)) throw new ConfigError('SEGSERVE_DEFAULT_MODEL', `'${defaultModel}' is not a valid model name`);

  const host = value(env, 'SEGSERVE_HOST') ?? DEFAULTS.host;
  if (!/^[A-Za-z0-9.:_-]+$/.test(host)) throw new ConfigError('SEGSERVE_HOST', `'${host}' is not a host name or address`);

  // Shared with inference: both edges and the pods must agree, or an upload the gateway accepts
  // would be refused upstream.
  const maxMessageBytes = integer(env, 'SEGSERVE_MAX_MESSAGE_BYTES', DEFAULTS.maxMessageBytes, 64 * 1024, 1024 * 1024 * 1024);

  const config: GatewayConfig = {
    host,
    httpPort: integer(env, 'SEGSERVE_HTTP_PORT', DEFAULTS.httpPort, 0, 65535),
    grpcPort: integer(env, 'SEGSERVE_GRPC_PORT', DEFAULTS.grpcPort, 0, 65535),
    staticRoutes,
    natsUrl,
    apiKeys,
    logLevel,
    deadlineMs: integer(env, 'SEGSERVE_DEADLINE_MS', DEFAULTS.deadlineMs, 1, 3_600_000),
    defaultModel,
    maxMessageBytes,
    maxUploadBytes: maxMessageBytes - DEFAULTS.envelopeBytes,
    retry: DEFAULTS.retry,
    keepaliveMs: DEFAULTS.keepaliveMs,
    shutdownGraceMs: DEFAULTS.shutdownGraceMs,
    memoryLimitBytes: integer(env, 'SEGSERVE_MEMORY_LIMIT_MB', DEFAULTS.memoryLimitMb, 128, 1024 * 1024) * 1024 * 1024,
  };
  return Object.freeze(config);
}
