// One inference process of the local driver. Its stdout/stderr go to a log file, not a pipe:
// a promoter that is killed leaves the process serving (a pipe would break on the next log
// line), and the restarted promoter adopts it by pid and port (docs/reliability.md item 35).
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, fstatSync, openSync } from 'node:fs';
import { open, readFile } from 'node:fs/promises';
import * as grpc from '@grpc/grpc-js';
import { loadProtos, parseStartupLine } from '@segserve/proto';
import { INFERENCE_MALLOC_ENV } from '@segserve/runtime';

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

/** A process started by this promoter, or adopted from a previous one (no child handle). */
export class InferenceProcess {
  private exitCode: number | null | undefined;
  private readonly exitWaiters: ((code: number | null) => void)[] = [];
  private poller: NodeJS.Timeout | undefined;

  private constructor(
    readonly pid: number,
    readonly logFile: string,
    private readonly child: ChildProcess | undefined,
    /** Where this process's output starts in the (appended) log file. */
    private readonly logOffset: number,
  ) {
    if (child) {
      child.on('exit', (code, signal) => this.markExited(code ?? (signal ? null : -1)));
      child.on('error', () => this.markExited(-1));
    } else {
      // Adopted: not our child, so no exit event; poll for its disappearance.
      this.poller = setInterval(() => {
        if (!pidAlive(this.pid)) this.markExited(null);
      }, 500);
      this.poller.unref();
    }
  }

  static spawn(spec: ProcessSpec): InferenceProcess {
    const fd = openSync(spec.logFile, 'a');
    try {
      const [cmd, ...pre] = spec.command;
      if (cmd === undefined) throw new Error('local deployer: empty inference command');
      // Earlier processes of this version wrote to the same file: read only what this one writes.
      const offset = fstatSync(fd).size;
      // glibc reads its malloc settings at exec: they must be in the environment the child
      // starts with (docs/architecture.md#memory-and-admission-by-cost); a caller's explicit value wins.
      const env = { ...INFERENCE_MALLOC_ENV, ...spec.env };
      const child = spawn(cmd, [...pre, ...spec.args], { env, stdio: ['ignore', fd, fd] });
      const proc = new InferenceProcess(child.pid ?? -1, spec.logFile, child, offset);
      if (child.pid === undefined) proc.markExited(-1);
      return proc;
    } finally {
      closeSync(fd);
    }
  }

  /** Adopts a running process if it is alive and looks like an inference server. */
  static async adopt(pid: number, logFile: string): Promise<InferenceProcess | undefined> {
    if (!pidAlive(pid)) return undefined;
    const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '');
    if (!cmdline.split('\0').includes('inference')) return undefined;
    return new InferenceProcess(pid, logFile, undefined, 0);
  }

  get hasExited(): boolean {
    return this.exitCode !== undefined;
  }

  get code(): number | null | undefined {
    return this.exitCode;
  }

  exited(): Promise<number | null> {
    if (this.exitCode !== undefined) return Promise.resolve(this.exitCode);
    return new Promise((resolve) => this.exitWaiters.push(resolve));
  }

  private markExited(code: number | null): void {
    if (this.exitCode !== undefined) return;
    this.exitCode = code;
    if (this.poller) clearInterval(this.poller);
    for (const w of this.exitWaiters.splice(0)) w(code);
  }

  /** Waits for the inference start-up line in the log; rejects when the process exits first. */
  async waitServing(timeoutMs: number, signal?: AbortSignal): Promise<ServingPorts> {
    const deadline = Date.now() + timeoutMs;
    let offset = this.logOffset;
    let rest = '';
    const handle = await open(this.logFile, 'r');
    try {
      for (;;) {
        const { bytesRead, buffer } = await handle.read({ buffer: Buffer.alloc(64 * 1024), position: offset });
        if (bytesRead > 0) {
          offset += bytesRead;
          const lines = (rest + buffer.subarray(0, bytesRead).toString('utf8')).split('\n');
          rest = lines.pop() ?? '';
          for (const line of lines) {
            const serving = parseStartupLine('inference', line);
            if (serving) return { grpcPort: serving.grpc_port, metricsPort: serving.metrics_port };
          }
          continue;
        }
        if (this.hasExited) throw new Error(`exited with code ${String(this.exitCode)} before serving; last log: ${await this.lastLogLines()}`);
        if (signal?.aborted) throw new Error('aborted');
        if (Date.now() > deadline) throw new Error(`not serving after ${timeoutMs} ms; last log: ${await this.lastLogLines()}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    } finally {
      await handle.close();
    }
  }

  async lastLogLines(n = 3): Promise<string> {
    const text = await readFile(this.logFile, 'utf8').catch(() => '');
    return text.trim().split('\n').slice(-n).join(' | ').slice(-600) || '(empty)';
  }

  /** SIGTERM (the inference drains), SIGKILL after `graceMs`. */
  async stop(graceMs: number): Promise<void> {
    if (this.hasExited) return;
    this.signal('SIGTERM');
    const timer = setTimeout(() => this.signal('SIGKILL'), graceMs);
    await this.exited();
    clearTimeout(timer);
  }

  private signal(sig: NodeJS.Signals): void {
    try {
      if (this.child) this.child.kill(sig);
      else process.kill(this.pid, sig);
    } catch {
      // already gone
    }
  }
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
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
