// A private, no-traffic inference process for one model version: how the verifier measures
// the stable "the same way" as the candidate (docs/architecture.md#promotion) without touching the live stable
// track, whose figures would include live load. Built on the local driver's process handling
// (same command, same environment, same model resolution), so both sides run alike.
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import type { ModelRef } from '../domain/ports.js';
import type { ModelResolver } from '../adapters/local-deployer.js';
import { InferenceProcess } from '../adapters/local-process.js';

export interface SandboxInstance {
  /** gRPC target, `ipv4:127.0.0.1:<port>`. */
  readonly target: string;
  /** `host:port` of its /metrics endpoint (empty when it reports none). */
  readonly metricsEndpoints: readonly string[];
  close(): Promise<void>;
}

export interface InferenceSandbox {
  start(ref: ModelRef, signal: AbortSignal): Promise<SandboxInstance>;
}

export interface LocalSandboxOptions {
  /** argv before the model arguments, e.g. [process.execPath, '<repo>/packages/cli/dist/bin.js', 'inference']. */
  readonly command: readonly string[];
  /** Environment of the process: use the deployer's, so that both sides are configured alike. */
  readonly env: Readonly<Record<string, string>>;
  readonly resolve: ModelResolver;
  /** Where the process's log goes (`sandbox-<model>-<version>-<time>.log`). */
  readonly logDir: string;
  /** From spawn to serving (default 120 s: a model load on a busy 2-core machine). */
  readonly readyTimeoutMs?: number;
}

export class LocalInferenceSandbox implements InferenceSandbox {
  constructor(private readonly options: LocalSandboxOptions) {}

  async start(ref: ModelRef, signal: AbortSignal): Promise<SandboxInstance> {
    const launch = await this.options.resolve(ref);
    await mkdir(this.options.logDir, { recursive: true });
    const logFile = path.join(this.options.logDir, `sandbox-${ref.model}-${ref.version}-${Date.now()}.log`);
    const proc = InferenceProcess.spawn({
      command: this.options.command,
      args: launch.args,
      // Port 0: the process picks free ports and logs them in its "serving" line.
      env: { ...this.options.env, ...launch.env, SEGSERVE_GRPC_PORT: '0', SEGSERVE_METRICS_PORT: '0' },
      logFile,
    });
    try {
      const ports = await proc.waitServing(this.options.readyTimeoutMs ?? 120_000, signal);
      return {
        target: `ipv4:127.0.0.1:${ports.grpcPort}`,
        metricsEndpoints: ports.metricsPort > 0 ? [`127.0.0.1:${ports.metricsPort}`] : [],
        close: () => proc.stop(10_000),
      };
    } catch (err) {
      await proc.stop(5_000);
      throw new Error(`sandbox for ${ref.model} ${ref.version}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
    }
  }
}
