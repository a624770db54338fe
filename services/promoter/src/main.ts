// The promoter's entry: the only place that reads process.env and constructs adapters
// (inject the runtime: docs/architecture.md#conventions). `segserve promoter` lands here.
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { parseModelManifest, parseNatsUrl, redactNatsUrl, startupLine, type TrackState } from '@segserve/proto';
import { LocalDeployer } from './adapters/local-deployer.js';
import { modelResolver } from './adapters/local-models.js';
import { ensureNatsObjects } from './adapters/nats-setup.js';
import { PrometheusMetrics } from './adapters/prometheus-metrics.js';
import { RolloutStore } from './adapters/rollout-store.js';
import { ScrapeMetrics } from './adapters/scrape-metrics.js';
import { ConfigError, PROMOTER_VARS, parseConfig, type PromoterConfig } from './config.js';
import { parsePolicy, type Policy } from './domain/policy.js';
import type { Logger, MetricsSource, ModelDeployer, ModelRef } from './domain/ports.js';
import { initialRecord, type RolloutSettings } from './domain/rollout.js';
import { createIntake, loadPolicies } from './intake/index.js';
import { serveRollbacks } from './rollout/control.js';
import { jetStreamEventSink } from './rollout/events.js';
import { GrpcGoldenReplayer } from './rollout/golden-replay.js';
import { startHttpEndpoint } from './adapters/http-endpoint.js';
import { createLogger } from '@segserve/runtime';
import { Rollouts } from './rollout/rollouts.js';
import { PromoterTelemetry } from './rollout/telemetry.js';
import { createVerifier } from './verify/index.js';

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const SEGSERVE_BIN = path.join(REPO_ROOT, 'packages', 'cli', 'dist', 'bin.js');

/** Variables an inference process must not inherit from the promoter (it gets its own). */
const NOT_FOR_INFERENCE = new Set<string>([...PROMOTER_VARS.filter((v) => v !== 'SEGSERVE_LOG_LEVEL'), 'SEGSERVE_GRPC_PORT', 'SEGSERVE_HTTP_PORT', 'SEGSERVE_MODEL_DIR', 'SEGSERVE_MODEL_NAME', 'SEGSERVE_MODEL_VERSION', 'SEGSERVE_MODEL_SHA256', 'SEGSERVE_UPSTREAMS']);

export async function main(): Promise<number> {
  const env = process.env;
  try {
    return await runPromoter(parseConfig(env, { repoRoot: REPO_ROOT }), env);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`segserve promoter: configuration: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
}

function requireNats(config: PromoterConfig): string {
  if (!config.natsUrl) throw new ConfigError('SEGSERVE_NATS_URL', 'required (e.g. nats://127.0.0.1:4222)');
  return config.natsUrl;
}

function settingsFor(policies: ReadonlyMap<string, Policy>, deployer: PromoterConfig['deployer']): (model: string) => RolloutSettings {
  const fallback = parsePolicy({ model: 'default', objectives: [{ metric: 'miou', better: 'higher' }] }).canary;
  return (model) => ({
    canary: policies.get(model)?.canary ?? fallback,
    // Kubernetes has its own progress deadline (300 s in the manifests): wait past it.
    readyTimeoutMs: deployer === 'kubernetes' ? 600_000 : 180_000,
    pollMs: deployer === 'kubernetes' ? 2_000 : 1_000,
  });
}

function untilSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    process.once('SIGTERM', () => resolve('SIGTERM'));
    process.once('SIGINT', () => resolve('SIGINT'));
  });
}

async function runPromoter(config: PromoterConfig, env: NodeJS.ProcessEnv): Promise<number> {
  const log = createLogger({ service: 'promoter', level: config.logLevel });
  const natsUrl = requireNats(config);
  if (config.deployer === 'kubernetes' && !config.prometheusUrl) throw new ConfigError('SEGSERVE_PROMETHEUS_URL', 'required with SEGSERVE_DEPLOYER=kubernetes (pods are not scraped directly)');
  const policies = await loadPolicies(config.policyPath);
  const nc: NatsConnection = await connect({ ...parseNatsUrl(natsUrl), name: 'segserve-promoter', maxReconnectAttempts: -1, reconnectTimeWait: 1_000 });
  void (async () => {
    for await (const s of nc.status()) if (s.type === 'disconnect' || s.type === 'reconnect') log.warn(`nats ${s.type}`, { server: redactNatsUrl(natsUrl) });
  })();
  const objects = await ensureNatsObjects(nc);
  const store = new RolloutStore(objects.rollouts);
  const telemetry = new PromoterTelemetry({ defaultMetrics: true });

  const childEnv = Object.fromEntries(Object.entries(env).filter((e): e is [string, string] => e[1] !== undefined && !NOT_FOR_INFERENCE.has(e[0])));
  const command = [process.execPath, SEGSERVE_BIN, 'inference'];
  const resolve = modelResolver({ roots: config.modelRoots, natsUrl });
  const stateDir = path.join(os.tmpdir(), `segserve-promoter-${createHash('sha256').update(natsUrl).digest('hex').slice(0, 12)}`);
  let local: LocalDeployer | undefined;
  let deployer: ModelDeployer;
  if (config.deployer === 'local') {
    local = await LocalDeployer.create({ command, env: childEnv, resolve, stateDir, envFor: (ref) => config.localVersionEnv[ref.version], log });
    deployer = local;
  } else {
    const { KubernetesDeployer } = await import('./adapters/kubernetes-deployer.js');
    deployer = await KubernetesDeployer.fromEnvironment({ log });
  }
  const localTargets = local;
  const scrape = config.prometheusUrl ? undefined : new ScrapeMetrics({ endpoints: () => localTargets?.scrapeTargets() ?? [] }).start();
  const metrics: MetricsSource = config.prometheusUrl ? new PrometheusMetrics({ url: config.prometheusUrl }) : (scrape as ScrapeMetrics);

  const verifier = createVerifier({ policies, goldenRoot: config.goldenRoot, rollouts: objects.rollouts, deployer, sandbox: { command, env: childEnv, resolve, logDir: path.join(stateDir, 'logs') }, log });
  const rollouts = new Rollouts({
    store,
    deployer,
    verifier,
    metrics,
    replayer: new GrpcGoldenReplayer({ goldenRoot: config.goldenRoot }),
    events: jetStreamEventSink(objects.js),
    telemetry,
    settings: settingsFor(policies, config.deployer),
    log,
    clock: () => new Date(),
  });

  await bootstrapStables(config.initialStable, { store, deployer, log });
  await rollouts.resumeAll();
  const watching = new AbortController();
  void (async () => {
    while (!watching.signal.aborted) {
      try {
        for await (const s of store.watchAll(watching.signal)) rollouts.onStateChange(s.record, s.revision);
      } catch (err) {
        if (!watching.signal.aborted) log.warn('rollout state watch broke; watching again', { error: err });
      }
      await new Promise((r) => setTimeout(r, 1_000));
    }
  })();
  const control = serveRollbacks(nc, (model, reason) => rollouts.requestRollback(model, reason), log);
  const intake = createIntake({ nc, objects, policies, signers: config.signers, runner: rollouts, log, modelRoots: config.modelRoots, countResult: (model, outcome) => telemetry.results.inc({ model, outcome }), countUnverified: (model, code) => telemetry.unverified.inc({ model, reason_code: code }) });
  await intake.start();
  const http = await startHttpEndpoint({
    port: config.metricsPort,
    registry: telemetry.registry,
    sdTargets: () => (local?.scrapeTargets() ?? []).map((t) => ({ target: t.target, labels: { segserve_track: t.track } })),
    unverified: () => intake.unverified.summary(),
  });
  log.announce(...startupLine('promoter', { metrics_port: http.port, deployer: config.deployer, metrics_source: metrics.name, models: [...policies.keys()], signers: config.signers.length, state_dir: config.deployer === 'local' ? stateDir : undefined }));

  const signal = await untilSignal();
  log.info('stopping', { signal });
  // Past this, a stuck close must not keep the process: the state in KV is safe either way.
  setTimeout(() => process.exit(1), 60_000).unref();
  watching.abort();
  await intake.stop();
  await control.drain().catch(() => undefined);
  await rollouts.close();
  await deployer.close();
  scrape?.close();
  await http.close();
  await nc.drain().catch(() => undefined);
  log.info('stopped');
  return 0;
}

/** SEGSERVE_INITIAL_STABLE: serve these versions as stable for models that have no state yet. */
async function bootstrapStables(dirs: readonly string[], deps: { store: RolloutStore; deployer: ModelDeployer; log: Logger }): Promise<void> {
  for (const dir of dirs) {
    try {
      const manifest = parseModelManifest(JSON.parse(await readFile(path.join(dir, 'model.json'), 'utf8')));
      const ref: ModelRef = { model: manifest.name, version: manifest.version, sha256: manifest.sha256 };
      if (await deps.store.get(ref.model)) continue;
      await deps.deployer.deployStable(ref);
      const deadline = Date.now() + 180_000;
      for (;;) {
        const r = await deps.deployer.readiness(ref.model, 'stable');
        if (r.state === 'failed') throw new Error(r.reason);
        if (r.state === 'ready') {
          const stable: TrackState = { version: ref.version, sha256: ref.sha256, target: r.target };
          await deps.store.write(initialRecord(ref.model, stable, new Date()), null, new Date());
          deps.log.info('initial stable serving', { model: ref.model, version: ref.version, target: r.target });
          break;
        }
        if (Date.now() > deadline) throw new Error('not ready after 180 s');
        await new Promise((res) => setTimeout(res, 500));
      }
    } catch (err) {
      deps.log.error('could not serve the initial stable', { dir, error: err });
    }
  }
}
