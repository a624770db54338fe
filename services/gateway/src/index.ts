// Public surface of @segserve/gateway (the CLI uses ./cli).
export { loadConfig, ConfigError, GATEWAY_ENV_VARS, type GatewayConfig } from './config.js';
export { startGateway, GATEWAY_VERSION, type RunningGateway } from './gateway.js';
export { parseUpstreamsSpec, normalizeTarget } from './domain/upstreams-spec.js';
export { chooseTrack, decideRoute, routeWeights } from './domain/routing.js';
export { openApiDocument } from './adapters/http/openapi.js';
