// Starts a gateway in-process against fake upstreams, for the in-process gateway tests beside it.
import { loadConfig, type GatewayConfig } from '../../../services/gateway/src/config.js';
import { startGateway, type GatewayDeps, type RunningGateway } from '../../../services/gateway/src/gateway.js';
import { createLogger } from '@segserve/runtime';

export interface Harness {
  readonly gateway: RunningGateway;
  readonly base: string;
  readonly grpcAddress: string;
  readonly logs: string[];
  close(): Promise<void>;
}

export async function startHarness(env: Record<string, string>, overrides: Partial<GatewayConfig> = {}, deps: Partial<GatewayDeps> = {}): Promise<Harness> {
  const config = { ...loadConfig({ SEGSERVE_HOST: '127.0.0.1', SEGSERVE_HTTP_PORT: '0', SEGSERVE_GRPC_PORT: '0', ...env }), ...overrides };
  const logs: string[] = [];
  const logger = createLogger({ level: 'debug', service: 'gateway', write: (l) => logs.push(l) });
  const gateway = await startGateway(config, { logger, ...deps });
  return {
    gateway,
    base: `http://127.0.0.1:${gateway.httpPort}`,
    grpcAddress: `127.0.0.1:${gateway.grpcPort}`,
    logs,
    close: () => gateway.stop(),
  };
}

/** A multipart body with the given files and fields. */
export function form(files: Record<string, Buffer | string>, fields: Record<string, string> = {}): FormData {
  const f = new FormData();
  for (const [name, value] of Object.entries(fields)) f.append(name, value);
  for (const [name, data] of Object.entries(files)) f.append(name, new Blob([typeof data === 'string' ? data : new Uint8Array(data)]), `${name}.bin`);
  return f;
}
