// The gateway's configuration: SEGSERVE_* environment → one frozen, validated object. Failing at
// start with the variable's name beats a gateway that half-works.
import { DEFAULT_MAX_MESSAGE_BYTES, isValidModelName, type RolloutState } from '@segserve/proto';
import { parseUpstreamsSpec, UpstreamsSpecError } from './domain/upstreams-spec.js';

import { checkUnknownVars, ConfigError, intVar, listVar, logLevelVar, natsUrlVar, portVar, readVar, type Env, type LogLevel } from '@segserve/runtime';

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
  /** gRPC max message size, both directions, both edges (docs/architecture.md#grpc), bytes. */
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
  /** How long a REST upload may wait for room in the memory budget before it is OVERLOADED, ms. */
  readonly budgetWaitMs: number;
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
  budgetWaitMs: 2_000, // an upload that finds the budget full waits this long, then OVERLOADED
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

export { ConfigError };

/** Parses the gateway's environment. `now` stamps the static routes' updated_at. */
export function loadConfig(env: Env, now: Date = new Date()): GatewayConfig {
  checkUnknownVars(env);

  const upstreams = readVar(env, 'SEGSERVE_UPSTREAMS');
  let staticRoutes: RolloutState[] = [];
  if (upstreams !== undefined) {
    try {
      staticRoutes = parseUpstreamsSpec(upstreams, now.toISOString());
    } catch (err) {
      if (err instanceof UpstreamsSpecError) throw new ConfigError('SEGSERVE_UPSTREAMS', err.message);
      throw err;
    }
  }
  const natsUrl = natsUrlVar(env);
  if (staticRoutes.length === 0 && natsUrl === undefined) {
    throw new ConfigError('SEGSERVE_UPSTREAMS', 'set SEGSERVE_UPSTREAMS (static routes) or SEGSERVE_NATS_URL (follow the rollout state); the gateway has nowhere to send requests');
  }

  const apiKeys = listVar(env, 'SEGSERVE_API_KEYS');
  // The key itself must never appear in an error message: name its position instead.
  apiKeys.forEach((k, i) => {
    if (k.length < 16) throw new ConfigError('SEGSERVE_API_KEYS', `key #${i + 1} is shorter than 16 characters`);
    if (/\s/.test(k)) throw new ConfigError('SEGSERVE_API_KEYS', `key #${i + 1} contains whitespace`);
  });

  const logLevel = logLevelVar(env, DEFAULTS.logLevel);

  const defaultModel = readVar(env, 'SEGSERVE_DEFAULT_MODEL') ?? (staticRoutes.length === 1 ? staticRoutes[0]?.model : undefined) ?? DEFAULTS.defaultModel;
  if (!isValidModelName(defaultModel)) throw new ConfigError('SEGSERVE_DEFAULT_MODEL', `'${defaultModel}' is not a valid model name`);

  const host = readVar(env, 'SEGSERVE_HOST') ?? DEFAULTS.host;
  if (!/^[A-Za-z0-9.:_-]+$/.test(host)) throw new ConfigError('SEGSERVE_HOST', `'${host}' is not a host name or address`);

  // Shared with inference: both edges and the pods must agree, or an upload the gateway accepts
  // would be refused upstream.
  const maxMessageBytes = intVar(env, 'SEGSERVE_MAX_MESSAGE_BYTES', DEFAULTS.maxMessageBytes, { min: 64 * 1024, max: 1024 * 1024 * 1024 });

  const config: GatewayConfig = {
    host,
    httpPort: portVar(env, 'SEGSERVE_HTTP_PORT', DEFAULTS.httpPort),
    grpcPort: portVar(env, 'SEGSERVE_GRPC_PORT', DEFAULTS.grpcPort),
    staticRoutes,
    natsUrl,
    apiKeys,
    logLevel,
    deadlineMs: intVar(env, 'SEGSERVE_DEADLINE_MS', DEFAULTS.deadlineMs, { min: 1, max: 3_600_000 }),
    defaultModel,
    maxMessageBytes,
    maxUploadBytes: maxMessageBytes - DEFAULTS.envelopeBytes,
    retry: DEFAULTS.retry,
    keepaliveMs: DEFAULTS.keepaliveMs,
    shutdownGraceMs: DEFAULTS.shutdownGraceMs,
    memoryLimitBytes: intVar(env, 'SEGSERVE_MEMORY_LIMIT_MB', DEFAULTS.memoryLimitMb, { min: 128, max: 1024 * 1024 }) * 1024 * 1024,
    budgetWaitMs: DEFAULTS.budgetWaitMs,
  };
  return Object.freeze(config);
}
