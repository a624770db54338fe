// The one process supervisor: spawn a process, collect its output line by line, wait for a line
// (its start-up line, usually) with an early-exit race, and stop it with a grace period, then
// kill. Used by `segserve start` and `stack`, the promoter's local driver, the test helpers and the
// benchmarks (like nats.js's `nst` launcher: a clear error when a binary is missing, dispose
// stops the process).
//
// Two ways to keep the output:
// - pipe (default): lines are read from stdout and stderr, kept in memory (the last `keepLines`)
//   and, with `tee`, appended to a file;
// - file: stdout and stderr go straight to a file the child writes itself (no pipe), so the child
//   outlives this process and its logging never depends on a reader (the local driver's inference
//   processes); waits then read the file.
// A process started by someone else can be `adopt`ed by pid: exit is polled, stop signals it.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, createWriteStream, existsSync, fstatSync, openSync, type WriteStream } from 'node:fs';
import { open, readFile } from 'node:fs/promises';
import path from 'node:path';
import { parseStartupLine, STARTUP_MESSAGES, type StartupLine, type StartupService } from '@segserve/proto';

export type Output = { readonly kind: 'pipe'; readonly tee?: string } | { readonly kind: 'file'; readonly path: string };

export interface SuperviseOptions {
  readonly command: string;
  readonly args?: readonly string[];
  /** The child's whole environment (not merged with this process's). */
  readonly env?: Readonly<Record<string, string | undefined>>;
  readonly cwd?: string;
  /** Used in error messages; default the command's base name. */
  readonly name?: string;
  readonly output?: Output;
  /** Lines kept in memory (pipe output); default 10 000. */
  readonly keepLines?: number;
  /** Own process group: a Ctrl-C in the terminal reaches only the parent, which stops the child in order. */
  readonly detached?: boolean;
  /** Called for every line (pipe output), e.g. to echo warnings. */
  readonly onLine?: (line: string) => void;
}

export type LineMatcher = RegExp | ((line: string) => boolean);

export interface LineWaitOptions {
  readonly timeoutMs?: number;
  /** Gives up (rejecting with the signal's reason) when aborted: a Ctrl-C during start-up. */
  readonly signal?: AbortSignal;
}

const matches = (matcher: LineMatcher, line: string): boolean => (typeof matcher === 'function' ? matcher(line) : matcher.test(line));

/** A JSON log line as an object, or undefined for any other line. */
export function parseJsonLine(line: string): Record<string, unknown> | undefined {
  if (!line.startsWith('{')) return undefined;
  try {
    const v: unknown = JSON.parse(line);
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/** Whether a process with this pid exists (and could be signalled by someone). */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export class Supervised implements AsyncDisposable {
  readonly name: string;
  readonly pid: number;
  /** Resolves with the exit code: null when ended by a signal (or adopted), -1 when it could not start. */
  readonly exited: Promise<number | null>;
  readonly #child: ChildProcess | undefined;
  readonly #file: { readonly path: string; readonly offset: number } | undefined;
  readonly #keep: number;
  readonly #lines: string[] = [];
  readonly #chunks: string[] = [];
  readonly #waiters = new Set<(line: string) => void>();
  #exitCode: number | null | undefined;
  #onExit: (code: number | null) => void = () => undefined;
  #poller: NodeJS.Timeout | undefined;
  #tee: WriteStream | undefined;

  private constructor(name: string, pid: number, child: ChildProcess | undefined, file: { path: string; offset: number } | undefined, keep: number) {
    this.name = name;
    this.pid = pid;
    this.#child = child;
    this.#file = file;
    this.#keep = keep;
    this.exited = new Promise((resolve) => (this.#onExit = resolve));
  }

  /** Starts `command`; never throws for a missing binary (the spawn error is an exit code -1 with the message in the output). */
  static spawn(options: SuperviseOptions): Supervised {
    const output = options.output ?? { kind: 'pipe' };
    const name = options.name ?? path.basename(options.command);
    const common = { cwd: options.cwd, env: options.env as NodeJS.ProcessEnv | undefined, detached: options.detached ?? false };
    let child: ChildProcess;
    let file: { path: string; offset: number } | undefined;
    if (output.kind === 'file') {
      const fd = openSync(output.path, 'a');
      try {
        // Earlier processes may have written to the same file: read only what this one writes.
        file = { path: output.path, offset: fstatSync(fd).size };
        child = spawn(options.command, [...(options.args ?? [])], { ...common, stdio: ['ignore', fd, fd] });
      } finally {
        closeSync(fd);
      }
    } else {
      child = spawn(options.command, [...(options.args ?? [])], { ...common, stdio: ['ignore', 'pipe', 'pipe'] });
    }
    const s = new Supervised(name, child.pid ?? -1, child, file, options.keepLines ?? 10_000);
    if (output.kind === 'pipe' && output.tee) s.#tee = createWriteStream(output.tee, { flags: 'a' });
    const onLine = options.onLine;
    for (const stream of [child.stdout, child.stderr]) {
      if (!stream) continue;
      let rest = '';
      stream.on('data', (data: Buffer) => {
        const text = data.toString('utf8');
        s.#tee?.write(data);
        s.#keepChunk(text);
        const parts = (rest + text).split('\n');
        rest = parts.pop() ?? '';
        for (const line of parts) {
          s.#addLine(line);
          onLine?.(line);
        }
      });
    }
    child.once('exit', (code, signal) => s.#markExited(signal ? null : code));
    child.once('error', (err) => {
      s.#keepChunk(`spawn error: ${err.message}\n`);
      s.#addLine(`spawn error: ${err.message}`);
      s.#markExited(-1);
    });
    return s;
  }

  /** A running process that is not our child (a restarted parent finds it by pid); its output is `logFile`. */
  static adopt(pid: number, logFile: string, name = `pid ${pid}`): Supervised | undefined {
    if (!pidAlive(pid)) return undefined;
    const s = new Supervised(name, pid, undefined, { path: logFile, offset: 0 }, 0);
    s.#poller = setInterval(() => {
      if (!pidAlive(pid)) s.#markExited(null);
    }, 500);
    s.#poller.unref();
    return s;
  }

  hasExited(): boolean {
    return this.#exitCode !== undefined;
  }

  /** The exit code once exited (see `exited`), else undefined. */
  get exitCode(): number | null | undefined {
    return this.#exitCode;
  }

  /** The underlying child (undefined when adopted). */
  get proc(): ChildProcess | undefined {
    return this.#child;
  }

  /** Lines so far (pipe output; the last `keepLines`). */
  lines(): readonly string[] {
    return this.#lines;
  }

  /** stdout and stderr so far, interleaved (pipe output). */
  output(): string {
    return this.#chunks.join('');
  }

  /** The last `n` lines of output, from memory or the log file, for error messages. */
  async tail(n = 20): Promise<string> {
    if (this.#file) {
      const text = await readFile(this.#file.path, 'utf8').catch(() => '');
      return text.slice(this.#file.offset > text.length ? 0 : this.#file.offset).trimEnd().split('\n').slice(-n).join('\n') || '(no output)';
    }
    return this.#lines.slice(-n).join('\n') || '(no output)';
  }

  /**
   * Resolves with the first line (past or future) that matches; rejects when the process exits
   * first, when `timeoutMs` passes, or when `signal` aborts. Errors carry the output's tail.
   */
  async waitForLine(matcher: LineMatcher, wait: number | LineWaitOptions = {}, what = `a line matching ${String(matcher)}`): Promise<string> {
    const options = typeof wait === 'number' ? { timeoutMs: wait } : wait;
    const timeoutMs = options.timeoutMs ?? 60_000;
    if (this.#file) return this.#waitInFile(matcher, what, timeoutMs, options.signal);
    const past = this.#lines.find((l) => matches(matcher, l));
    if (past !== undefined) return past;
    options.signal?.throwIfAborted();
    return new Promise((resolve, reject) => {
      const done = (fn: () => void): void => {
        clearTimeout(timer);
        this.#waiters.delete(waiter);
        options.signal?.removeEventListener('abort', onAbort);
        fn();
      };
      const waiter = (line: string): void => {
        if (matches(matcher, line)) done(() => resolve(line));
      };
      const onAbort = (): void => done(() => reject(options.signal?.reason as Error));
      const timer = setTimeout(() => done(() => reject(new Error(`${this.name}: waited ${timeoutMs / 1000} s for ${what}; output:\n${this.#lines.slice(-40).join('\n')}`))), timeoutMs);
      this.#waiters.add(waiter);
      options.signal?.addEventListener('abort', onAbort, { once: true });
      void this.exited.then((code) => done(() => reject(new Error(`${this.name} exited (code ${String(code)}) before printing ${what}; output:\n${this.#lines.slice(-40).join('\n')}`))));
    });
  }

  /** The first JSON log line for which `predicate` holds. */
  async waitForJson<T = Record<string, unknown>>(predicate: (obj: Record<string, unknown>) => boolean, wait: number | LineWaitOptions = {}): Promise<T> {
    const line = await this.waitForLine((l) => {
      const obj = parseJsonLine(l);
      return obj !== undefined && predicate(obj);
    }, wait, 'the JSON line it was waited for');
    return parseJsonLine(line) as T;
  }

  /** `service`'s start-up line (its bound ports). */
  async waitForStartup<S extends StartupService>(service: S, wait: number | LineWaitOptions = {}): Promise<StartupLine<S>> {
    const line = await this.waitForLine((l) => parseStartupLine(service, l) !== undefined, wait, `its start-up line ("msg":"${STARTUP_MESSAGES[service]}")`);
    return parseStartupLine(service, line)!;
  }

  /** Sends a signal if the process still runs. */
  kill(signal: NodeJS.Signals = 'SIGTERM'): void {
    if (this.hasExited()) return;
    try {
      if (this.#child) this.#child.kill(signal);
      else process.kill(this.pid, signal);
    } catch {
      // already gone
    }
  }

  /** SIGTERM, then SIGKILL after `graceMs`; resolves with the exit code. */
  async stop(graceMs = 10_000): Promise<number | null> {
    if (!this.hasExited()) {
      this.kill('SIGTERM');
      const timer = setTimeout(() => this.kill('SIGKILL'), graceMs);
      await this.exited;
      clearTimeout(timer);
    }
    await this.#closeTee();
    return this.#exitCode ?? null;
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop(5_000);
  }

  #keepChunk(text: string): void {
    this.#chunks.push(text);
    if (this.#chunks.length > this.#keep) this.#chunks.shift();
  }

  #addLine(line: string): void {
    this.#lines.push(line);
    if (this.#lines.length > this.#keep) this.#lines.shift();
    for (const w of this.#waiters) w(line);
  }

  #markExited(code: number | null): void {
    if (this.#exitCode !== undefined) return;
    this.#exitCode = code;
    if (this.#poller) clearInterval(this.#poller);
    this.#onExit(code);
  }

  #closeTee(): Promise<void> {
    const tee = this.#tee;
    this.#tee = undefined;
    return tee ? new Promise((resolve) => tee.end(() => resolve())) : Promise.resolve();
  }

  async #waitInFile(matcher: LineMatcher, what: string, timeoutMs: number, signal: AbortSignal | undefined): Promise<string> {
    const file = this.#file!;
    const deadline = Date.now() + timeoutMs;
    let offset = file.offset;
    let rest = '';
    const handle = await open(file.path, 'r');
    try {
      for (;;) {
        const { bytesRead, buffer } = await handle.read({ buffer: Buffer.alloc(64 * 1024), position: offset });
        if (bytesRead > 0) {
          offset += bytesRead;
          const lines = (rest + buffer.subarray(0, bytesRead).toString('utf8')).split('\n');
          rest = lines.pop() ?? '';
          const hit = lines.find((l) => matches(matcher, l));
          if (hit !== undefined) return hit;
          continue;
        }
        if (this.hasExited()) throw new Error(`${this.name} exited (code ${String(this.#exitCode)}) before printing ${what}; last output:\n${await this.tail(5)}`);
        signal?.throwIfAborted();
        if (Date.now() > deadline) throw new Error(`${this.name}: waited ${timeoutMs / 1000} s for ${what}; last output:\n${await this.tail(5)}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    } finally {
      await handle.close();
    }
  }
}

/** Starts a supervised process (see SuperviseOptions). */
export function supervise(options: SuperviseOptions): Supervised {
  return Supervised.spawn(options);
}

/** `name` on PATH (or the sbin directories), or an absolute path that exists; undefined when missing. */
export function findBinary(name: string, env: Readonly<Record<string, string | undefined>> = process.env): string | undefined {
  if (path.isAbsolute(name)) return existsSync(name) ? name : undefined;
  const dirs = (env['PATH'] ?? '').split(path.delimiter).filter((d) => d !== '').concat(['/usr/sbin', '/usr/bin', '/usr/local/bin', '/sbin']);
  return dirs.map((d) => path.join(d, name)).find((p) => existsSync(p));
}

/** Like findBinary, but a missing binary is an error naming the command that installs it. */
export function requireBinary(name: string, installHint: string, env?: Readonly<Record<string, string | undefined>>): string {
  const found = findBinary(name, env);
  if (!found) throw new Error(`${name} is not installed; install it with: ${installHint}`);
  return found;
}

/** Polls `url` until it answers 2xx; rejects after `timeoutMs`, or at once when `process` exits. */
export async function waitForHttp(url: string, options: { readonly timeoutMs: number; readonly process?: Supervised; readonly signal?: AbortSignal }): Promise<void> {
  const deadline = Date.now() + options.timeoutMs;
  for (;;) {
    if (options.process?.hasExited()) throw new Error(`${options.process.name} exited (code ${String(options.process.exitCode)}) before ${url} answered; last output:\n${await options.process.tail(15)}`);
    options.signal?.throwIfAborted();
    const ok = await fetch(url, { signal: AbortSignal.timeout(3_000) }).then((r) => r.ok, () => false);
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`${url} did not answer 200 within ${options.timeoutMs / 1000} s`);
    await new Promise((r) => setTimeout(r, 250));
  }
}
