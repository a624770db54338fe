// One inference process of the local driver. Its stdout/stderr go to a log file, not a pipe:
// a promoter that is killed leaves the process serving (a pipe would break on the next log
// line), and the restarted promoter adopts it by pid and port (docs/reliability.md item 35).
import { readFile } from 'node:fs/promises';
import * as grpc from '@grpc/grpc-js';
import { loadProtos } from '@segserve/proto';
import { INFERENCE_MALLOC_ENV, pidAlive, supervise, Supervised } from '@segserve/runtime';

export interface ProcessSpec {
  /** argv[0] and the arguments before the model arguments, e.g. [node, bin.js, 'inference']. */
  readonly command: readonly string[];
  readonly args: readonly string[];
  readonly env: Readonly<Record<string, string>>;
  readonly logFile: string;
}

export interface ServingPorts {
  readonly grpcPort: number;
  readonly metricsPort: number;
}

/**
 * One inference process of the local driver, on the runtime's supervisor: started by this
 * promoter (output to its log file, not a pipe), or adopted from a previous one (no child handle).
 */
export class InferenceProcess {
  private constructor(
    private readonly supervised: Supervised,
    readonly logFile: string,
  ) {}

  static spawn(spec: ProcessSpec): InferenceProcess {
    const [command, ...pre] = spec.command;
    if (command === undefined) throw new Error('local deployer: empty inference command');
    // glibc reads its malloc settings at exec: they must be in the environment the child starts
    // with (docs/architecture.md#memory-and-admission-by-cost); a caller's explicit value wins.
    const env = { ...INFERENCE_MALLOC_ENV, ...spec.env };
    return new InferenceProcess(supervise({ command, args: [...pre, ...spec.args], env, name: 'inference', output: { kind: 'file', path: spec.logFile } }), spec.logFile);
  }

  /** Adopts a running process if it is alive and looks like an inference server. */
  static async adopt(pid: number, logFile: string): Promise<InferenceProcess | undefined> {
    if (!pidAlive(pid)) return undefined;
    const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
    if (!cmdline.split('\0').includes('inference')) return undefined;
    const adopted = Supervised.adopt(pid, logFile, `inference (pid ${pid})`);
    return adopted ? new InferenceProcess(adopted, logFile) : undefined;
  }

  get pid(): number {
    return this.supervised.pid;
  }

  get hasExited(): boolean {
    return this.supervised.hasExited();
  }

  get code(): number | null | undefined {
    return this.supervised.exitCode;
  }

  exited(): Promise<number | null> {
    return this.supervised.exited;
  }

  /** Waits for the inference start-up line in the log; rejects when the process exits first. */
  async waitServing(timeoutMs: number, signal?: AbortSignal): Promise<ServingPorts> {
    try {
      const line = await this.supervised.waitForStartup('inference', { timeoutMs, ...(signal ? { signal } : {}) });
      return { grpcPort: line.grpc_port, metricsPort: line.metrics_port };
    } catch (err) {
      // One-line reasons: they end up in the rollout state and `segserve rollout status`.
      if (this.hasExited) throw new Error(`exited with code ${String(this.code)} before serving; last log: ${await this.lastLogLines()}`, { cause: err });
      if (signal?.aborted) throw err;
      throw new Error(`not serving after ${timeoutMs} ms; last log: ${await this.lastLogLines()}`, { cause: err });
    }
  }

  async lastLogLines(n = 3): Promise<string> {
    return (await this.supervised.tail(n)).split('\n').join(' | ').slice(-600);
  }

  /** SIGTERM (the inference drains), SIGKILL after `graceMs`. */
  async stop(graceMs: number): Promise<void> {
    await this.supervised.stop(graceMs);
  }
}

/** grpc.health.v1 Check on 127.0.0.1:<port>: true when SERVING. */
export async function healthServing(port: number, timeoutMs = 2_000): Promise<boolean> {
  const { health } = loadProtos();
  const client = new health.grpc.health.v1.Health(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  try {
    return await new Promise<boolean>((resolve) => {
      client.Check({ service: '' }, { deadline: Date.now() + timeoutMs }, (err, res) => resolve(!err && res?.status === 'SERVING'));
    });
  } finally {
    client.close();
  }
}
