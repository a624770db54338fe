// The only place that reads process.env and installs signal handlers.
import { ConfigError, loadConfig } from './config.js';
import { GATEWAY_VERSION, startGateway } from './gateway.js';
import { createLogger, memoryLimit } from '@segserve/runtime';
import { startupLine } from '@segserve/proto';

/** `segserve gateway`: runs until SIGTERM/SIGINT, then drains and resolves with the exit code. */
export async function runGateway(argv: readonly string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write('usage: segserve gateway\n\nConfigured by SEGSERVE_* variables; see docs/configuration.md.\n');
    return 0;
  }
  if (argv.length > 0) {
    process.stderr.write(`segserve gateway: unexpected argument '${argv[0] ?? ''}' (configure with SEGSERVE_* variables)\n`);
    return 2;
  }
  let config;
  try {
    config = loadConfig(process.env);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`segserve gateway: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
  const logger = createLogger({ level: config.logLevel, service: 'gateway' });
  const cgroup = memoryLimit();
  const gateway = await startGateway(config, { logger, ...(cgroup === undefined ? {} : { cgroupMemoryLimitBytes: cgroup }) });
  logger.announce(
    ...startupLine('gateway', {
      http_port: gateway.httpPort,
      grpc_port: gateway.grpcPort,
      host: config.host,
      version: GATEWAY_VERSION,
      models: gateway.core.router.states().map((s) => s.model),
      nats: config.natsUrl !== undefined,
      api_keys: config.apiKeys.length > 0,
      upload_budget_mb: Math.round(gateway.uploadBudgetBytes / 2 ** 20),
    }),
  );

  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    process.once('SIGTERM', () => resolve('SIGTERM'));
    process.once('SIGINT', () => resolve('SIGINT'));
  });
  logger.info('shutting down', { signal });
  await gateway.stop();
  logger.info('stopped');
  // Anything still holding the event loop (a straggling socket) must not keep a stopped
  // gateway alive; unref'd, so a clean exit happens first.
  setTimeout(() => process.exit(0), 2000).unref();
  return 0;
}
