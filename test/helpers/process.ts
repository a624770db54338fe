// Test helpers that start real processes on loopback (like nats.js's `nst`):
// random ports, temp dirs, an early-exit race, a clear error when a binary is missing, and
// Symbol.asyncDispose cleanup.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseStartupLine, type StartupLine, type StartupService } from '@segserve/proto';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const SEGSERVE_BIN = path.join(REPO_ROOT, 'packages', 'cli', 'dist', 'bin.js');

/** A port that was free a moment ago (prefer port 0 + the service's log line where possible). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** Finds `name` on PATH (or an absolute path) or throws with the command that installs it. */
export function requireBinary(name: string, installHint: string): string {
  const candidates = path.isAbsolute(name)
    ? [name]
    : (process.env['PATH'] ?? '').split(path.delimiter).concat(['/usr/sbin', '/usr/bin', '/sbin']).map((dir) => path.join(dir, name));
  const found = candidates.find((c) => existsSync(c));
  if (!found) throw new Error(`${name} is not installed; install it with: ${installHint}`);
  return found;
}

export interface WaitOptions {
  readonly timeoutMs?: number;
  readonly intervalMs?: number;
  readonly what?: string;
}

/** Polls `fn` until it returns a value other than undefined/false, or throws after the timeout. */
export async function waitFor<T>(fn: () => T | Promise<T>, options: WaitOptions = {}): Promise<Exclude<T, undefined | false>> {
  const { timeoutMs = 30_000, intervalMs = 100, what = 'condition' } = options;
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await fn();
      if (value !== undefined && value !== false) return value as Exclude<T, undefined | false>;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > deadline) {
      const suffix = lastError instanceof Error ? ` (last error: ${lastError.message})` : '';
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${suffix}`);
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

export interface TempDir extends AsyncDisposable {
  readonly path: string;
}

/** A fresh directory under the OS temp dir, removed on dispose. */
export async function tempDir(prefix = 'segserve-test-'): Promise<TempDir> {
  const dir = await mkdtemp(path.join(os.tmpdir(), prefix));
  return { path: dir, [Symbol.asyncDispose]: () => rm(dir, { recursive: true, force: true }) };
}

export interface SpawnOptions {
  readonly env?: Readonly<Record<string, string | undefined>>;
  readonly cwd?: string;
  /** Name used in error messages. */
  readonly name?: string;
  /** Keep the parent's environment (default true). SEGSERVE_* of the parent are dropped. */
  readonly inheritEnv?: boolean;
}

export type LineMatcher = RegExp | ((line: string) => boolean);

export interface Spawned extends AsyncDisposable {
  readonly name: string;
  readonly proc: ChildProcess;
  readonly pid: number;
  /** stdout and stderr so far, interleaved. */
  output(): string;
  /** Lines so far. */
  lines(): readonly string[];
  /** Resolves with the first line (past or future) that matches; rejects on exit or timeout. */
  waitForLine(matcher: LineMatcher, timeoutMs?: number): Promise<string>;
  /** Parses JSON log lines and resolves with the first object for which `predicate` holds. */
  waitForJson<T = Record<string, unknown>>(predicate: (obj: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<T>;
  /** Resolves with `service`'s start-up line (its bound ports); rejects on exit or timeout. */
  waitForStartup<S extends StartupService>(service: S, timeoutMs?: number): Promise<StartupLine<S>>;
  kill(signal?: NodeJS.Signals): void;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves with the exit code (null when killed). */
  stop(graceMs?: number): Promise<number | null>;
  readonly exited: Promise<number | null>;
  readonly hasExited: () => boolean;
}

/** Spawns a process, collecting its output; stops it on dispose. */
export function spawnProcess(command: string, args: readonly string[], options: SpawnOptions = {}): Spawned {
  const name = options.name ?? path.basename(command);
  const base: Record<string, string | undefined> = options.inheritEnv === false ? { PATH: process.env['PATH'] } : { ...process.env };
  for (const key of Object.keys(base)) if (key.startsWith('SEGSERVE_')) delete base[key];
  const proc = spawn(command, args, {
    cwd: options.cwd ?? REPO_ROOT,
    env: { ...base, ...options.env } as NodeJS.ProcessEnv,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  const chunks: string[] = [];
  const waiters = new Set<(line: string) => void>();
  let exitCode: number | null | undefined;
  const exited = new Promise<number | null>((resolve) => {
    proc.on('exit', (code) => {
      exitCode = code;
      resolve(code);
    });
    proc.on('error', (err) => {
      chunks.push(`spawn error: ${err.message}\n`);
      exitCode = -1;
      resolve(-1);
    });
  });
  const onData = (buffered: { rest: string }) => (data: Buffer) => {
    const text = data.toString('utf8');
    chunks.push(text);
    const parts = (buffered.rest + text).split('\n');
    buffered.rest = parts.pop() ?? '';
    for (const line of parts) {
      lines.push(line);
      for (const w of waiters) w(line);
    }
  };
  proc.stdout?.on('data', onData({ rest: '' }));
  proc.stderr?.on('data', onData({ rest: '' }));

  const matches = (matcher: LineMatcher, line: string): boolean => (typeof matcher === 'function' ? matcher(line) : matcher.test(line));

  const waitForLine = (matcher: LineMatcher, timeoutMs = 60_000): Promise<string> => {
    const past = lines.find((l) => matches(matcher, l));
    if (past !== undefined) return Promise.resolve(past);
    return new Promise((resolve, reject) => {
      const done = (fn: () => void): void => {
        clearTimeout(timer);
        waiters.delete(waiter);
        fn();
      };
      const waiter = (line: string): void => {
        if (matches(matcher, line)) done(() => resolve(line));
      };
      const timer = setTimeout(() => done(() => reject(new Error(`${name}: no line matching ${String(matcher)} within ${timeoutMs} ms; output:\n${tail()}`))), timeoutMs);
      waiters.add(waiter);
      void exited.then((code) => done(() => reject(new Error(`${name} exited (code ${String(code)}) before printing a line matching ${String(matcher)}; output:\n${tail()}`))));
    });
  };

  const tail = (): string => chunks.join('').split('\n').slice(-40).join('\n');

  const parseJson = (line: string): Record<string, unknown> | undefined => {
    if (!line.startsWith('{')) return undefined;
    try {
      return JSON.parse(line) as Record<string, unknown>;
    } catch {
      return undefined;
    }
  };

  const stop = async (graceMs = 10_000): Promise<number | null> => {
    if (exitCode !== undefined) return exitCode;
    proc.kill('SIGTERM');
    const timer = setTimeout(() => proc.kill('SIGKILL'), graceMs);
    const code = await exited;
    clearTimeout(timer);
    return code;
  };

  return {
    name,
    proc,
    pid: proc.pid ?? -1,
    output: () => chunks.join(''),
    lines: () => lines,
    waitForLine,
    waitForJson: async <T>(predicate: (obj: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<T> => {
      const line = await waitForLine((l) => {
        const obj = parseJson(l);
        return obj !== undefined && predicate(obj);
      }, timeoutMs);
      return parseJson(line) as T;
    },
    waitForStartup: async <S extends StartupService>(service: S, timeoutMs?: number): Promise<StartupLine<S>> => {
      const line = await waitForLine((l) => parseStartupLine(service, l) !== undefined, timeoutMs);
      return parseStartupLine(service, line)!;
    },
    kill: (signal: NodeJS.Signals = 'SIGTERM') => {
      if (exitCode === undefined) proc.kill(signal);
    },
    stop,
    exited,
    hasExited: () => exitCode !== undefined,
    [Symbol.asyncDispose]: async () => {
      await stop(5_000);
    },
  };
}

/** Runs `segserve <args>` (the built CLI) as a child process. */
export function spawnSegserve(args: readonly string[], options: SpawnOptions = {}): Spawned {
  if (!existsSync(SEGSERVE_BIN)) throw new Error(`${SEGSERVE_BIN} is missing: run \`npx tsc -b\` (npm test does it)`);
  return spawnProcess(process.execPath, [SEGSERVE_BIN, ...args], { name: `segserve ${args[0] ?? ''}`, ...options });
}
