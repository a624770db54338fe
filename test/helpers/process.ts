// Test helpers that start real processes on loopback (like nats.js's `nst`):
// random ports, temp dirs, and the runtime's supervisor (early-exit race, a clear error when a
// binary is missing, Symbol.asyncDispose cleanup) with every output line kept.
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { supervise, type Supervised } from '@segserve/runtime';

export { requireBinary } from '@segserve/runtime';

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

/** A process a test started: the runtime's supervisor, every output line kept. */
export type Spawned = Supervised;

// Every process a test file started, until it exits: stopLeftovers (test/helpers/leftovers.ts,
// after each file) stops those its file did not, e.g. one whose start-up wait failed before the
// file's own afterAll had it to stop.
const started = new Set<Spawned>();

/** Stops the processes this test file started and left running; returns how many. */
export async function stopLeftovers(): Promise<number> {
  const left = [...started].filter((p) => !p.hasExited());
  started.clear();
  await Promise.all(left.map((p) => p.stop(2_000)));
  return left.length;
}

/** Spawns a process, collecting its output; stops it on dispose. */
export function spawnProcess(command: string, args: readonly string[], options: SpawnOptions = {}): Spawned {
  const base: Record<string, string | undefined> = options.inheritEnv === false ? { PATH: process.env['PATH'] } : { ...process.env };
  for (const key of Object.keys(base)) if (key.startsWith('SEGSERVE_')) delete base[key];
  const spawned = supervise({
    command,
    args,
    cwd: options.cwd ?? REPO_ROOT,
    env: { ...base, ...options.env },
    name: options.name ?? path.basename(command),
    keepLines: Number.POSITIVE_INFINITY,
  });
  started.add(spawned);
  void spawned.exited.then(() => started.delete(spawned));
  return spawned;
}

/** Runs `segserve <args>` (the built CLI) as a child process. */
export function spawnSegserve(args: readonly string[], options: SpawnOptions = {}): Spawned {
  if (!existsSync(SEGSERVE_BIN)) throw new Error(`${SEGSERVE_BIN} is missing: run \`npx tsc -b\` (npm test does it)`);
  return spawnProcess(process.execPath, [SEGSERVE_BIN, ...args], { name: `segserve ${args[0] ?? ''}`, ...options });
}
