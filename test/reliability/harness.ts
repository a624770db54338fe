// Fault-injection harness (issue 8): real inference and gateway processes on loopback, generated
// load through the gateway over REST and gRPC, and an account of every request — each one either
// succeeds or gets a code of the error table (docs/architecture.md#errors), with the HTTP status / gRPC status the table
// gives that code. Nothing may be lost silently (a reset connection, a hang, an unknown status).
// A census of the processes checks that none but the target of a fault exited or restarted.
import * as grpc from '@grpc/grpc-js';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { ERROR_CODE_METADATA_KEY, ERROR_CODES, GRPC_STATUS, HTTP_STATUS, loadProtos, type ErrorCode, type SegmenterClient, parseStartupLine } from '@segserve/proto';
import { REPO_ROOT, spawnSegserve, type Spawned } from '../helpers/process.js';

export const TINY_SEG = path.join(REPO_ROOT, 'test', 'fixtures', 'models', 'tiny-seg', '1');
export const TINY_IMAGES = path.join(REPO_ROOT, 'test', 'fixtures', 'golden-tiny', 'images');
export const MODEL = 'tiny-seg';

const TABLE = new Set<string>(ERROR_CODES);

export interface Proc extends AsyncDisposable {
  readonly name: string;
  readonly spawned: Spawned;
  readonly pid: number;
  readonly ports: Readonly<Record<string, number>>;
}

/** `segserve inference` on the tiny fixture model, loopback, any free ports. */
export async function startInference(name: string, env: Record<string, string> = {}, modelDir = TINY_SEG): Promise<Proc> {
  const spawned = spawnSegserve(['inference', '--model', modelDir], {
    env: { SEGSERVE_HOST: '127.0.0.1', SEGSERVE_GRPC_PORT: '0', SEGSERVE_METRICS_PORT: '0', SEGSERVE_MAX_CONCURRENCY: '1', SEGSERVE_SHUTDOWN_GRACE_MS: '10000', ...env },
    name,
  });
  const line = await spawned.waitForStartup('inference', 120_000);
  return { name, spawned, pid: spawned.pid, ports: { grpc: line.grpc_port, metrics: line.metrics_port }, [Symbol.asyncDispose]: async () => void (await spawned.stop(10_000)) };
}

/** `segserve gateway` with static upstreams (or SEGSERVE_NATS_URL in `env`). */
export async function startGateway(env: Record<string, string>): Promise<Proc> {
  const spawned = spawnSegserve(['gateway'], { env: { SEGSERVE_HOST: '127.0.0.1', SEGSERVE_HTTP_PORT: '0', SEGSERVE_GRPC_PORT: '0', ...env }, name: 'gateway' });
  const line = await spawned.waitForStartup('gateway', 90_000);
  return { name: 'gateway', spawned, pid: spawned.pid, ports: { http: line.http_port, grpc: line.grpc_port }, [Symbol.asyncDispose]: async () => void (await spawned.stop(15_000)) };
}

export const ipv4Target = (...procs: Proc[]): string => `ipv4:${procs.map((p) => `127.0.0.1:${p.ports['grpc']}`).join(',')}`;

export interface Outcome {
  readonly protocol: 'rest' | 'grpc';
  readonly startedAt: number;
  readonly endedAt: number;
  /** 'OK', a table code, or what came instead: 'http:<status>', 'grpc:<status>', 'NETWORK: …'. */
  readonly code: string;
  /** True when the answer is OK or a table code carried with the status the table gives it. */
  readonly accounted: boolean;
}

/** REST answer → outcome code; a non-200 must be JSON {error: {code}} with the table's status. */
export function classifyRest(status: number, body: string): { code: string; accounted: boolean } {
  if (status === 200) return { code: 'OK', accounted: true };
  let code: string | undefined;
  try {
    code = (JSON.parse(body) as { error?: { code?: string } }).error?.code;
  } catch {
    code = undefined;
  }
  if (code !== undefined && TABLE.has(code)) return { code, accounted: HTTP_STATUS[code as ErrorCode] === status };
  return { code: `http:${status}`, accounted: false };
}

/** gRPC error → outcome code; the segserve trailer must name a table code with the table's status. */
export function classifyGrpc(err: grpc.ServiceError | null): { code: string; accounted: boolean } {
  if (!err) return { code: 'OK', accounted: true };
  const code = err.metadata?.get(ERROR_CODE_METADATA_KEY)[0];
  if (typeof code === 'string' && TABLE.has(code)) return { code, accounted: GRPC_STATUS[code as ErrorCode] === err.code };
  return { code: `grpc:${grpc.status[err.code] ?? err.code}`, accounted: false };
}

export function segmenter(address: string): SegmenterClient {
  return new (loadProtos().segmenter.segserve.v1.Segmenter)(address, grpc.credentials.createInsecure(), { 'grpc.max_receive_message_length': 64 * 1024 * 1024 });
}

export interface LoadOptions {
  /** Concurrent clients per protocol. */
  readonly workers?: number;
  /** Client-side timeout, well beyond the gateway's deadline: a request never answered is lost. */
  readonly clientTimeoutMs?: number;
  readonly pauseMs?: number;
}

/** Closed-loop REST + gRPC load through a gateway, recording every request's outcome. */
export class Load {
  readonly outcomes: Outcome[] = [];
  readonly #running: Promise<void>[] = [];
  readonly #client: SegmenterClient;
  #stop = false;
  readonly #inFlight = new Set<{ protocol: 'rest' | 'grpc'; startedAt: number }>();

  constructor(gateway: Proc, options: LoadOptions = {}) {
    const workers = options.workers ?? 3;
    const timeoutMs = options.clientTimeoutMs ?? 60_000;
    const pause = options.pauseMs ?? 0;
    const images = ['facade-00.png', 'facade-01.jpg'].map((f) => readFileSync(path.join(TINY_IMAGES, f)));
    const base = `http://127.0.0.1:${gateway.ports['http']}`;
    this.#client = segmenter(`127.0.0.1:${gateway.ports['grpc']}`);
    const record = (protocol: 'rest' | 'grpc', startedAt: number, r: { code: string; accounted: boolean }): void => {
      this.outcomes.push({ protocol, startedAt, endedAt: performance.now(), ...r });
    };
    const rest = async (i: number): Promise<void> => {
      const startedAt = performance.now();
      const mark = { protocol: 'rest' as const, startedAt };
      this.#inFlight.add(mark);
      try {
        const form = new FormData();
        form.append('image', new Blob([new Uint8Array(images[i % images.length]!)]), 'upload.png');
        const res = await fetch(`${base}/v1/models/${MODEL}/segment`, { method: 'POST', body: form, signal: AbortSignal.timeout(timeoutMs) });
        record('rest', startedAt, classifyRest(res.status, await res.text()));
      } catch (err) {
        record('rest', startedAt, { code: `NETWORK: ${err instanceof Error ? err.message : String(err)}`, accounted: false });
      } finally {
        this.#inFlight.delete(mark);
      }
    };
    const rpc = (i: number): Promise<void> => {
      const startedAt = performance.now();
      const mark = { protocol: 'grpc' as const, startedAt };
      this.#inFlight.add(mark);
      return new Promise((resolve) => {
        this.#client.Segment({ model: MODEL, image: images[i % images.length]!, mask_format: 'PNG' }, { deadline: Date.now() + timeoutMs }, (err) => {
          this.#inFlight.delete(mark);
          // The client's own deadline passing means the system never answered: not accounted.
          record('grpc', startedAt, err?.code === grpc.status.DEADLINE_EXCEEDED && !err.metadata?.get(ERROR_CODE_METADATA_KEY).length ? { code: 'CLIENT_TIMEOUT', accounted: false } : classifyGrpc(err));
          resolve();
        });
      });
    };
    for (let w = 0; w < workers; w++) {
      for (const send of [rest, rpc]) {
        this.#running.push(
          (async () => {
            for (let i = w; !this.#stop; i++) {
              await send(i);
              if (pause) await new Promise((r) => setTimeout(r, pause));
            }
          })(),
        );
      }
    }
  }

  /** Requests sent and not yet answered. */
  get inFlight(): number {
    return this.#inFlight.size;
  }

  /** Resolves once `n` more requests have been answered. */
  async answered(n: number, timeoutMs = 60_000): Promise<void> {
    const target = this.outcomes.length + n;
    const deadline = Date.now() + timeoutMs;
    while (this.outcomes.length < target) {
      if (Date.now() > deadline) throw new Error(`only ${this.outcomes.length - target + n} of ${n} requests answered within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  /** Stops sending and waits for every request in flight to be answered. */
  async stop(): Promise<Outcome[]> {
    this.#stop = true;
    await Promise.all(this.#running);
    this.#client.close();
    return this.outcomes;
  }
}

/** Counts by code, e.g. {OK: 120, UNAVAILABLE: 2}. */
export function countCodes(codes: readonly string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const c of codes) out[c] = (out[c] ?? 0) + 1;
  return out;
}

export const tally = (outcomes: readonly Outcome[]): Record<string, number> => countCodes(outcomes.map((o) => o.code));

/**
 * Who was running before a fault: afterwards every process except the target must still be
 * running with the same pid, and must have logged its ready line exactly once (no in-process
 * restart either).
 */
export class Census {
  readonly #procs: Proc[];
  constructor(procs: Proc[]) {
    this.#procs = procs;
  }

  /** Processes (other than `except`) that exited or logged their ready line more than once. */
  casualties(except: Proc[] = []): string[] {
    const out: string[] = [];
    for (const p of this.#procs) {
      if (except.includes(p)) continue;
      if (p.spawned.hasExited()) out.push(`${p.name} (pid ${p.pid}) exited`);
      const ready = p.spawned.lines().filter((l) => parseStartupLine('inference', l) ?? parseStartupLine('gateway', l)).length;
      if (ready !== 1) out.push(`${p.name} logged its ready line ${ready} times`);
    }
    return out;
  }
}
