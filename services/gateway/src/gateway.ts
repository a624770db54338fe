// Composition root of one gateway: builds the adapters from a config, starts both servers and
// returns a handle that stops them gracefully. No process.env here (main.ts reads it).
import { readFileSync } from 'node:fs';
import type * as grpc from '@grpc/grpc-js';
import type { FastifyInstance } from 'fastify';
import type { GatewayConfig } from './config.js';
import { ApiKeys } from './domain/api-keys.js';
import { GatewayCore } from './app/gateway-core.js';
import { Readiness } from './app/readiness.js';
import { Router } from './app/router.js';
import { GatewayMetrics } from './adapters/metrics.js';
import { NatsRolloutSource } from './adapters/nats-rollouts.js';
import { LayeredRolloutSource, StaticRolloutSource, type RolloutSource } from './adapters/rollout-source.js';
import { UpstreamPool } from './adapters/upstreams.js';
import { buildHttpServer } from './adapters/http/server.js';
import { bindGrpc, buildGrpcServer } from './adapters/grpc/server.js';
import { MemoryLedger, MIN_HEADROOM_BYTES, requestBudgetBytes, type Logger } from '@segserve/runtime';

export const GATEWAY_VERSION: string = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;

export interface GatewayDeps {
  readonly logger: Logger;
  /** Uniform in [0, 1) for the stable/canary split. */
  readonly random?: () => number;
  /** Replaces the configured state source (tests). */
  readonly source?: RolloutSource;
  /** The cgroup memory limit, bytes (main.ts reads it); absent: config.memoryLimitBytes. */
  readonly cgroupMemoryLimitBytes?: number;
  /** Resident memory of this process now, bytes (the budget's baseline). */
  readonly residentBytes?: () => number;
}

/**
 * Kept out of the upload budget: the V8 heap's growth under load, sockets, and the garbage
 * buffers between two collections.
 */
export const MEMORY_HEADROOM_BYTES = MIN_HEADROOM_BYTES;
/** Uploads that may wait for room in the budget at once (REST; gRPC is refused at once). */
const MAX_WAITING_UPLOADS = 32;

export interface RunningGateway {
  readonly httpPort: number;
  /** What uploads in flight may hold at once, bytes. */
  readonly uploadBudgetBytes: number;
  readonly grpcPort: number;
  readonly core: GatewayCore;
  readonly readiness: Readiness;
  readonly http: FastifyInstance;
  readonly grpc: grpc.Server;
  /** Not ready at once, then drain both servers; forced after the grace time. */
  stop(): Promise<void>;
}

function rolloutSource(config: GatewayConfig, logger: Logger): RolloutSource {
  const fixed = new StaticRolloutSource(config.staticRoutes);
  if (config.natsUrl === undefined) return fixed;
  const followed = new NatsRolloutSource({ url: config.natsUrl, logger: logger.child({ component: 'rollouts' }) });
  return config.staticRoutes.length === 0 ? followed : new LayeredRolloutSource(followed, fixed);
}

export async function startGateway(config: GatewayConfig, deps: GatewayDeps): Promise<RunningGateway> {
  const { logger } = deps;
  const metrics = new GatewayMetrics();
  const pool = new UpstreamPool({ maxMessageBytes: config.maxMessageBytes, retry: config.retry, keepaliveMs: config.keepaliveMs, retireAfterMs: config.deadlineMs });
  const source = deps.source ?? rolloutSource(config, logger);
  const router = new Router({ source, pool, metrics, logger, ...(deps.random ? { random: deps.random } : {}) });
  const core = new GatewayCore({ router, metrics, logger });
  const readiness = new Readiness({ router });
  const apiKeys = new ApiKeys(config.apiKeys);
  const budgetBytes = requestBudgetBytes({
    limitBytes: deps.cgroupMemoryLimitBytes,
    configuredBytes: config.memoryLimitBytes,
    baselineBytes: (deps.residentBytes ?? (() => process.memoryUsage.rss()))(),
    headroomBytes: MEMORY_HEADROOM_BYTES,
  });
  const ledger = new MemoryLedger({ capacityBytes: budgetBytes, maxWaiting: MAX_WAITING_UPLOADS, onChange: (s) => metrics.setMemory(s) });
  metrics.setMemory(ledger.snapshot);

  const { app: http } = await buildHttpServer({
    core,
    readiness,
    metrics,
    apiKeys,
    logger,
    deadlineMs: config.deadlineMs,
    maxUploadBytes: config.maxUploadBytes,
    defaultModel: config.defaultModel,
    version: GATEWAY_VERSION,
    ledger,
    budgetWaitMs: config.budgetWaitMs,
  });
  const grpcServer = buildGrpcServer({
    core,
    readiness,
    apiKeys,
    deadlineMs: config.deadlineMs,
    maxMessageBytes: config.maxMessageBytes,
    defaultModel: config.defaultModel,
    version: GATEWAY_VERSION,
    ledger,
  });

  let grpcPort: number;
  try {
    grpcPort = await bindGrpc(grpcServer, config.host, config.grpcPort);
    await http.listen({ host: config.host, port: config.httpPort });
  } catch (err) {
    grpcServer.forceShutdown();
    await http.close();
    router.close();
    pool.close();
    await source.close();
    throw err;
  }
  const address = http.server.address();
  const httpPort = typeof address === 'object' && address ? address.port : config.httpPort;

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      readiness.shutDown();
      const drained = Promise.all([
        http.close(),
        new Promise<void>((resolve) => grpcServer.tryShutdown(() => resolve())),
      ]);
      let timer: NodeJS.Timeout | undefined;
      const forced = new Promise<'forced'>((resolve) => {
        timer = setTimeout(() => resolve('forced'), config.shutdownGraceMs);
      });
      if ((await Promise.race([drained, forced])) === 'forced') {
        logger.warn('grace time over; closing remaining connections', { grace_ms: config.shutdownGraceMs });
        grpcServer.forceShutdown();
        http.server.closeAllConnections();
      }
      clearTimeout(timer);
      router.close();
      pool.close();
      await source.close();
    })();
    return stopping;
  };

  return { httpPort, grpcPort, uploadBudgetBytes: budgetBytes, core, readiness, http, grpc: grpcServer, stop };
}
