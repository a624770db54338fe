// Wires one inference process from a config object (no environment access here; main.ts reads
// it): metrics, admission, the service core, gRPC and metrics servers, then the model load loop.
// Ports are bound before the model loads so that health reports NOT_SERVING during warm-up.

import { readFileSync } from 'node:fs';
import { SharpCodec } from './adapters/image-codec.js';
import { AdmissionGate } from './adapters/admission-gate.js';
import { collectGarbage, headroomBytes, MemoryLedger, requestBudgetBytes, type Logger } from '@segserve/runtime';
import { startupLine, type SegserveError } from '@segserve/proto';
import { InferenceMetrics } from './adapters/metrics.js';
import { startMetricsServer, type MetricsServer } from './adapters/metrics-server.js';
import { OrtWorkerPool } from './adapters/ort-backend.js';
import { arenaPolicy, imageLimits, type InferenceConfig } from './config.js';
import { processMemory, type MemoryProbe } from './adapters/memory-probe.js';
import { initialArena } from './domain/arena.js';
import { ACTIVATION_PER_INPUT_BYTE } from './domain/image-cost.js';
import { ModelLoadError, segmentSpec } from './domain/model.js';
import { bindServer, createGrpcServer, shutdownServer } from './grpc/server.js';
import { selfTarget, warmServingPath, warmUpToken, type WarmUpResult } from './grpc/warm-up.js';
import { loadPipeline, type BackendFactory, type LoadedPipeline } from './model-loader.js';
import type { ModelStore } from './ports.js';
import { InferenceService } from './service.js';

export interface InferenceProcess {
  readonly grpcPort: number;
  readonly metricsPort: number;
  readonly service: InferenceService;
  readonly metrics: InferenceMetrics;
  /** Resolves once the model is loaded and SERVING (never rejects; load errors are retried). */
  readonly ready: Promise<void>;
  /** The serving path's warm-up before SERVING (grpc/warm-up.ts), once it has run. */
  readonly warmUp: WarmUpResult | undefined;
  /** Graceful stop: NOT_SERVING, refuse new calls, let admitted ones finish, close. */
  stop(): Promise<void>;
}

export interface StartOptions {
  readonly config: InferenceConfig;
  readonly logger: Logger;
  readonly store: ModelStore;
  /** The cgroup memory limit, when one is set (else config.memoryLimitBytes): segserve_memory_limit_bytes and the admission budget. */
  readonly memoryLimitBytes?: number;
  /** A worker thread died and none is left: the process cannot serve any more. */
  readonly onFatal?: (err: Error) => void;
  readonly createBackend?: BackendFactory;
  /** This process's memory, read around the warm-up runs (the arena's choice, the admission budget). */
  readonly memory?: MemoryProbe;
}

const RETRY_MIN_MS = 1_000;
/** The warm-up call's deadline: a model run, on a busy machine. */
const WARM_UP_TIMEOUT_MS = 60_000;
const RETRY_MAX_MS = 30_000;

function packageVersion(): string {
  try {
    return (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version?: string }).version ?? '0.0.0';
  } catch {
    return '0.0.0';
  }
}

const mb = (bytes: number): number => Math.round(bytes / 2 ** 20);

/**
 * The admission budget from what the warm-up runs (the model's, then the serving path's) did to
 * this process's memory: the RSS after them is the baseline, the peak above that is one run's
 * activations. Where the peak cannot be
 * reset (not Linux), activations are estimated from the input size.
 */
function measureBudget(probe: MemoryProbe, l: LoadedPipeline, config: InferenceConfig, cgroupLimit: number | undefined): { budgetBytes: number; baselineBytes: number; activationBytes: number; measured: boolean } {
  const before = l.beforeWarmUp;
  const after = probe.read();
  const inputBytes = l.model.input.shape.reduce((a, b) => a * b, 1) * 4;
  const measured = before !== undefined && after !== undefined;
  const baselineBytes = after?.rssBytes ?? 0;
  const activationBytes = measured ? Math.max(0, after.peakBytes - after.rssBytes) : inputBytes * ACTIVATION_PER_INPUT_BYTE;
  const budgetBytes = requestBudgetBytes({
    limitBytes: cgroupLimit,
    configuredBytes: config.memoryLimitBytes,
    // One set of activations per session may be live at any time, whatever the requests are.
    baselineBytes: baselineBytes + config.ort.sessions * activationBytes,
    headroomBytes: headroomBytes(cgroupLimit ?? config.memoryLimitBytes, config.memoryHeadroom),
  });
  return { budgetBytes, baselineBytes, activationBytes, measured };
}

export function defaultBackendFactory(config: InferenceConfig, onFatal?: (err: Error) => void, logger?: Logger): BackendFactory {
  return (artifact, arena = initialArena(config.ort.arena)) =>
    OrtWorkerPool.create({
      onnx: artifact.onnx,
      io: { inputName: artifact.manifest.input.name, dims: [1, 3, artifact.manifest.input.height, artifact.manifest.input.width], outputName: artifact.manifest.output.name },
      workers: config.ort.sessions,
      settings: { ...config.ort, arena },
      segment: segmentSpec(artifact.manifest),
      onWorkerExit: (err, remaining) => {
        logger?.error('inference worker died', { remaining, error: err });
        if (remaining === 0) onFatal?.(err);
      },
    });
}

export async function startInference(options: StartOptions): Promise<InferenceProcess> {
  const { config, logger, store } = options;
  // Read at scrape time only, once the service below exists.
  const metrics: InferenceMetrics = new InferenceMetrics({ abandoned: (): number => service.abandonedWork });
  const limitBytes = options.memoryLimitBytes ?? config.memoryLimitBytes;
  metrics.memoryLimitBytes.set(limitBytes);
  const gate = new AdmissionGate(
    { maxConcurrency: config.maxConcurrency, maxQueue: config.maxQueue, queueTimeoutMs: config.queueTimeoutMs },
    {
      onChange: (s) => {
        metrics.queueDepth.set(s.queued);
        metrics.inFlight.set(s.running);
      },
    },
  );
  const service: InferenceService = new InferenceService({ gate, logger, metrics, fault: config.fault });
  // Calls the gRPC edge refuses (over-size, undecodable, too many repeated values) never reach
  // the service; they are counted and logged here like the service's own answers.
  const onRefusal = (method: string, err: SegserveError): void => {
    const m = service.model;
    metrics.observe(m?.name ?? '', m?.version ?? '', err.code, {});
    logger.warn('request rejected', { method: method.slice(method.lastIndexOf('/') + 1), code: err.code, message: err.message, at: 'edge' });
  };
  const token = warmUpToken();
  const { server, health } = createGrpcServer(service, { serverName: 'segserve-inference', serverVersion: packageVersion() }, { ...config, onRefusal, warmUpToken: token });
  // SERVING (health, readiness) once the model is loaded and the serving path warm.
  let warmUp: WarmUpResult | undefined;
  const serving = (): boolean => service.state === 'serving' && warmUp !== undefined;
  const reportHealth = (): void => health.setAll(serving() ? 'SERVING' : 'NOT_SERVING');
  service.onStateChange(reportHealth);

  const grpcPort = await bindServer(server, config.host, config.grpcPort);
  let metricsServer: MetricsServer;
  try {
    metricsServer = await startMetricsServer({ registry: metrics.registry, host: config.host, port: config.metricsPort, ready: serving });
  } catch (err) {
    server.forceShutdown();
    throw err;
  }
  logger.info('starting', { grpc_port: grpcPort, metrics_port: metricsServer.port, model_source: store.location });

  const codec = new SharpCodec({ maxInputPixels: config.maxInputPixels });
  const limits = imageLimits(config);
  const createBackend = options.createBackend ?? defaultBackendFactory(config, options.onFatal, logger);
  const probe = options.memory ?? processMemory;
  let loaded: LoadedPipeline | undefined;
  let stopping = false;
  let wake: (() => void) | undefined;

  const loadLoop = async (): Promise<void> => {
    for (let attempt = 0, delay = RETRY_MIN_MS; !stopping; attempt++, delay = Math.min(RETRY_MAX_MS, delay * 2)) {
      try {
        const l = await loadPipeline({ store, createBackend, codec, limits, arena: arenaPolicy(config, options.memoryLimitBytes), memory: probe });
        if (stopping) {
          await l.backend.close();
          return;
        }
        loaded = l;
        const m = l.model;
        const serveWithin = (budgetBytes: number): void => {
          metrics.memoryBudgetBytes.set(budgetBytes);
          service.serve(l.pipeline, new MemoryLedger({ capacityBytes: budgetBytes, maxWaiting: config.maxQueue, onChange: (snap) => metrics.admittedBytes.set(snap.held) }));
        };
        // The serving path's warm-up runs within the budget the model's warm-up run measured; the
        // budget is then measured again, so that what the serving path keeps (its compiled code,
        // codecs, the image library's state) is part of the baseline rather than of the requests' share.
        serveWithin(measureBudget(probe, l, config, options.memoryLimitBytes).budgetBytes);
        metrics.servingModel(m.name, m.version, m.sha256);
        metrics.modelLoadSeconds.set(l.loadSeconds);
        metrics.ortArena.set(l.arena?.arena === true ? 1 : 0);
        const [, , height, width] = m.input.shape as [number, number, number, number];
        try {
          warmUp = await warmServingPath({ target: selfTarget(config.host, grpcPort), model: m.name, width, height, token, maxInputPixels: config.maxInputPixels, timeoutMs: WARM_UP_TIMEOUT_MS });
          if (warmUp.code !== 'OK') logger.warn('serving path warm-up failed', { code: warmUp.code });
          else logger.info('serving path warmed', { ms: Math.round(warmUp.ms) });
        } catch (err) {
          // Serving starts anyway: only the first clients pay for the cold path.
          warmUp = { code: 'INTERNAL', ms: 0 };
          logger.warn('serving path warm-up failed', { error: err });
        }
        // Start-up's garbage (the load, both warm-ups) collected now, while nothing waits, rather
        // than by a collection that V8 would start in the middle of the first bursts of traffic.
        logger.info('start-up garbage collected', { ms: Math.round(collectGarbage() * 10) / 10 });
        const budget = measureBudget(probe, l, config, options.memoryLimitBytes);
        serveWithin(budget.budgetBytes);
        reportHealth();
        logger.announce(
          ...startupLine('inference', {
            grpc_port: grpcPort,
            metrics_port: metricsServer.port,
            model: m.name,
            version: m.version,
            sha256: m.sha256,
            load_seconds: Math.round(l.loadSeconds * 1000) / 1000,
            max_concurrency: config.maxConcurrency,
            max_queue: config.maxQueue,
            intra_op_threads: config.ort.intraOpThreads,
            ort_arena: l.arena?.arena ?? false,
            ort_arena_reason: l.arena?.reason ?? 'set',
            ...(l.warmUpGrowthBytes === undefined ? {} : { warm_up_growth_mb: mb(l.warmUpGrowthBytes) }),
            memory_limit_mb: mb(limitBytes),
            baseline_mb: mb(budget.baselineBytes),
            activation_mb: mb(budget.activationBytes),
            activation_measured: budget.measured,
            budget_mb: mb(budget.budgetBytes),
          }),
        );
        return;
      } catch (err) {
        const reason = err instanceof ModelLoadError ? err.reason : 'runtime';
        logger.error('model load failed', { reason, attempt, retry_in_ms: delay, source: store.location, error: err });
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, delay);
          wake = () => {
            clearTimeout(t);
            resolve();
          };
        });
        wake = undefined;
      }
    }
  };
  const ready = loadLoop();

  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopped ??= (async () => {
      stopping = true;
      wake?.();
      logger.info('draining', { in_flight: gate.snapshot.running, queued: gate.snapshot.queued });
      const drained = service.drain();
      health.setAll('NOT_SERVING');
      health.endWatches();
      await drained;
      await ready;
      await shutdownServer(server, 2_000);
      await metricsServer.close();
      await loaded?.backend.close();
      await store.close();
      logger.info('stopped');
    })();
    return stopped;
  };

  return {
    grpcPort,
    metricsPort: metricsServer.port,
    service,
    metrics,
    ready,
    get warmUp() {
      return warmUp;
    },
    stop,
  };
}
