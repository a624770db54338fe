// Public surface of @segserve/promoter (a curated index).
export type * from './domain/ports.js';
// Rollout: the pure state machine and canary analysis, the runner, the state store.
export { analysisWindowSeconds, decide, desiredTracks, initialRecord, isSettled, observationsNeeded, outcomeOf, rollbackRefusal, startRollout, type CandidateRecord, type Decision, type Observation, type RolloutEvent, type RolloutRecord, type RolloutSettings } from './domain/rollout.js';
export { analyzeBake, analyzeCanary, type Analysis, type Check, type CheckName, type CheckResult, type Verdict } from './domain/canary-analysis.js';
export { Rollouts, type RollbackAnswer, type RolloutsOptions } from './rollout/rollouts.js';
export { ModelController, type ControllerDeps, type RolloutEventSink, type RolloutStateStore } from './rollout/controller.js';
export { RolloutStore, RolloutConflictError, type StoredRollout } from './adapters/rollout-store.js';
export { PromoterTelemetry } from './rollout/telemetry.js';
export { requestRollback, rollbackSubject } from './rollout/control.js';
// Drivers and metrics sources.
export { LocalDeployer, targetPorts, type LocalDeployerOptions, type LocalModelLaunch, type ModelResolver } from './adapters/local-deployer.js';
export { modelResolver, type ModelResolverOptions } from './adapters/local-models.js';
export { healthServing } from './adapters/local-process.js';
export { KubernetesDeployer, KubernetesConflictError, rolloutStatus } from './adapters/kubernetes-deployer.js';
export { PrometheusMetrics } from './adapters/prometheus-metrics.js';
export { ScrapeMetrics, type ScrapeEndpoint } from './adapters/scrape-metrics.js';
export { GrpcGoldenReplayer } from './rollout/golden-replay.js';
export { parseConfig, ConfigError, type PromoterConfig } from './config.js';
// What the `segserve` client commands (packages/cli: publish, keys, decisions, rollout, rollback)
// use: the stores they read, the signing keys, the upload and the formats the promoter shares.
export { durationMs, fmt } from './domain/policy.js';
export { defaultExperimentId } from './domain/experiment-result.js';
export { DecisionStore } from './adapters/decision-store.js';
export { ensureNatsObjects, type NatsLimits } from './adapters/nats-setup.js';
export { ModelRegistry, type UploadProgress } from './adapters/object-store.js';
export { generateSigningKeys, signResult, signingKeyFromSeed } from './adapters/signing.js';

