// The only place that reads process.env, installs signal handlers and picks adapters.
// `segserve inference` and `segserve eval` land here through cli.ts.

import os from 'node:os';
import { cpuLimit, memoryLimit } from './adapters/cgroup.js';
import { DirectoryModelStore } from './adapters/directory-store.js';
import { SharpCodec } from './adapters/image-codec.js';
import { processMemory } from './adapters/memory-probe.js';
import { createLogger, type Logger } from '@segserve/runtime';
import { defaultBackendFactory, startInference } from './app.js';
import { ConfigError, applyFlags, arenaPolicy, imageLimits, parseConfig, type InferenceConfig, type ModelSource } from './config.js';
import { evaluate, formatReport } from './eval.js';
import { loadPipeline } from './model-loader.js';
import type { ModelStore } from './ports.js';

function systemFacts(): { cpuLimit: number; tmpDir: string } {
  return { cpuLimit: cpuLimit(), tmpDir: os.tmpdir() };
}

async function createStore(source: ModelSource, logger: Logger): Promise<ModelStore> {
  if (source.kind === 'directory') return new DirectoryModelStore({ dir: source.dir, sha256: source.sha256 });
  const { NatsModelStore } = await import('./adapters/nats-store.js');
  return new NatsModelStore({ ...source, logger });
}

function configFrom(command: string, argv: readonly string[]): InferenceConfig | number {
  try {
    return parseConfig(applyFlags(process.env, argv), systemFacts());
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`segserve ${command}: ${err.message}\n`);
    return 2;
  }
}

/** `segserve inference [--model <dir>] [--grpc-port n] …`: serves until SIGTERM/SIGINT. */
const INFERENCE_USAGE = `usage: segserve inference [--model <dir>] [--grpc-port n] [--metrics-port n] [--host addr]
                          [--max-concurrency n] [--max-queue n] [--queue-timeout-ms n] [--log-level level]
Every option has a SEGSERVE_* variable (docs/configuration.md); options win over variables.
`;

export async function runInference(argv: readonly string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(INFERENCE_USAGE);
    return 0;
  }
  const config = configFrom('inference', argv);
  if (typeof config === 'number') return config;
  const logger = createLogger({ level: config.logLevel, service: 'inference' });
  if (config.fault.delayMs > 0 || config.fault.errorRatio > 0) logger.warn('fault injection is on (test only)', { delay_ms: config.fault.delayMs, error_ratio: config.fault.errorRatio });
  // glibc reads these at process start, so only the launcher can set them. Measured with the
  // 1152×768 PSPNet, 2 sessions, 10 concurrent uploads: 445–520 MB peak RSS untuned, 320–340 MB
  // tuned (for 10–15 % more CPU per image: fresh pages are faulted in on every run).
  if (process.platform === 'linux' && (process.env['MALLOC_ARENA_MAX'] === undefined || process.env['MALLOC_MMAP_THRESHOLD_'] === undefined)) {
    logger.warn('glibc malloc is not tuned: start with MALLOC_ARENA_MAX=2 MALLOC_MMAP_THRESHOLD_=131072 so that freed activations leave the RSS (docs/architecture.md#memory-and-admission-by-cost)');
  }
  const store = await createStore(config.model, logger);
  const proc = await startInference({
    config,
    logger,
    store,
    memoryLimitBytes: memoryLimit(),
    onFatal: (err) => {
      logger.error('no inference worker left; exiting', { error: err });
      process.exit(1);
    },
  });
  return new Promise<number>((resolve) => {
    let forced: NodeJS.Timeout | undefined;
    const onSignal = (signal: NodeJS.Signals): void => {
      if (forced) {
        logger.warn('second signal: exiting now', { signal });
        process.exit(1);
      }
      logger.info('shutting down', { signal, grace_ms: config.shutdownGraceMs });
      // In-flight work gets the grace time; after it the process goes regardless (docs/reliability.md item 19).
      forced = setTimeout(() => {
        const s = proc.service;
        logger.error('forced exit after the grace time', { grace_ms: config.shutdownGraceMs, state: s.state });
        process.exit(1);
      }, config.shutdownGraceMs);
      forced.unref();
      void proc.stop().then(() => {
        clearTimeout(forced);
        // Everything is closed; should a stray handle linger, do not hang on it.
        setTimeout(() => process.exit(0), 1_000).unref();
        resolve(0);
      });
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  });
}

const EVAL_USAGE = 'usage: segserve eval --model <dir> --golden <dir> [--json] [--passes n] [--dump <dir>]';

/** `segserve eval --model <dir> --golden <dir> [--json] [--passes n] [--dump <dir>]`. */
export async function runEval(argv: readonly string[]): Promise<number> {
  let golden: string | undefined;
  let dump: string | undefined;
  let json = false;
  let passes = 1;
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--json') json = true;
    else if (a === '--golden') golden = argv[++i];
    else if (a.startsWith('--golden=')) golden = a.slice('--golden='.length);
    else if (a === '--passes') passes = Number(argv[++i]);
    else if (a === '--dump') dump = argv[++i];
    else if (a === '--help' || a === '-h') {
      process.stdout.write(`${EVAL_USAGE}\n`);
      return 0;
    } else rest.push(a);
  }
  if (golden === undefined || !Number.isInteger(passes) || passes < 1) {
    process.stderr.write(`segserve eval: ${golden === undefined ? '--golden <dir> is required' : '--passes must be a positive integer'}\n${EVAL_USAGE}\n`);
    return 2;
  }
  const config = configFrom('eval', rest);
  if (typeof config === 'number') return config;
  // Logs go to stderr so that --json output stays parseable.
  const logger = createLogger({ level: config.logLevel === 'debug' ? 'debug' : 'warn', service: 'eval', write: (l) => process.stderr.write(l) });
  const store = await createStore(config.model, logger);
  const codec = new SharpCodec({ maxInputPixels: config.maxInputPixels });
  const limits = imageLimits(config);
  // One session, the serving thread and arena settings: latency as one request sees it on an idle pod.
  const one = { ...config, ort: { ...config.ort, sessions: 1 } };
  const loaded = await loadPipeline({ store, codec, limits, createBackend: defaultBackendFactory(one, undefined, logger), arena: arenaPolicy(one, memoryLimit()), memory: processMemory }).catch((err: unknown) => {
    process.stderr.write(`segserve eval: ${err instanceof Error ? err.message : String(err)}\n`);
    return undefined;
  });
  if (!loaded) return 1;
  try {
    const report = await evaluate({ pipeline: loaded.pipeline, goldenDir: golden, passes, ...(dump ? { dumpDir: dump } : {}) });
    process.stdout.write(json ? `${JSON.stringify({ ...report, settings: { intra_op_threads: config.ort.intraOpThreads, arena: loaded.arena?.arena, arena_mode: config.ort.arena, mem_pattern: config.ort.memPattern } })}\n` : formatReport(report));
    return 0;
  } catch (err) {
    process.stderr.write(`segserve eval: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  } finally {
    await loaded.backend.close();
    await store.close();
  }
}
