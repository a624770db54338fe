// Public surface of @segserve/promoter (STYLE.md: a curated index).
export type * from './domain/ports.js';
export { LocalDeployer, targetPorts, type LocalDeployerOptions, type LocalModelLaunch, type ModelResolver } from './adapters/local-deployer.js';
export { modelResolver, type ModelResolverOptions } from './adapters/local-models.js';
export { healthServing } from './adapters/local-process.js';
export { jsonLogger, silentLogger, type LogLevel } from './rollout/log.js';
