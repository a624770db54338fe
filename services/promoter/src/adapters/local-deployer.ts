// The local rollout driver (docs/architecture.md#rollout-drivers): inference processes per model version on loopback
// ports, supervised like a tiny kubelet — started, health-checked (grpc.health.v1), restarted
// on a crash on the same ports, `failed` on a crash loop or when never serving, and stopped
// only after the rollout state no longer routes to them (prune), so gateways switch first.
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Track } from '@segserve/proto';
import type { Logger, ModelDeployer, ModelRef, Readiness } from '../domain/ports.js';
import { healthServing, InferenceProcess } from './local-process.js';

/** How to start an inference process on one model version: CLI arguments and/or environment. */
export interface LocalModelLaunch {
  readonly args: readonly string[];
  readonly env: Readonly<Record<string, string>>;
}

export type ModelResolver = (ref: ModelRef) => Promise<LocalModelLaunch>;

export interface LocalDeployerOptions {
  /** argv before the model arguments, e.g. [process.execPath, '<repo>/packages/cli/dist/bin.js', 'inference']. */
  readonly command: readonly string[];
  /** Environment of every inference process (the promoter's own SEGSERVE_* already removed). */
  readonly env: Readonly<Record<string, string>>;
  readonly resolve: ModelResolver;
  /** Holds `processes.json` (so a restarted promoter adopts its processes) and `logs/`. */
  readonly stateDir: string;
  /** Processes per track (default 1). */
  readonly replicas?: number;
  /** Extra environment for one version on one track (tests: fault injection on a canary). */
  readonly envFor?: (ref: ModelRef, track: Track) => Readonly<Record<string, string>> | undefined;
  /** From spawn to SERVING (default 120 s: model load on a busy 2-core machine). */
  readonly readyTimeoutMs?: number;
  /** Restarts within 5 minutes before the track reports `failed` (default 2); it keeps retrying. */
  readonly maxRestarts?: number;
  /** Time a retired process keeps serving after it was last routed to (default 3 s). */
  readonly drainMs?: number;
  /** SIGTERM → SIGKILL grace (default 15 s). */
  readonly stopGraceMs?: number;
  readonly log: Logger;
}

type ReplicaStatus = 'starting' | 'ready' | 'failed' | 'stopped';

interface Replica {
  readonly index: number;
  proc: InferenceProcess | undefined;
  grpcPort: number;
  metricsPort: number;
  status: ReplicaStatus;
  failure: string | undefined;
  restartTimes: number[];
}

interface Group {
  readonly ref: ModelRef;
  track: Track;
  readonly replicas: Replica[];
  stopping: boolean;
  retiredAt: number | undefined;
}

interface Slots {
  stable: Group | undefined;
  canary: Group | undefined;
  retiring: Group[];
}

interface RegistryEntry {
  readonly model: string;
  readonly version: string;
  readonly sha256: string;
  readonly slot: Track | 'retiring';
  readonly index: number;
  readonly pid: number;
  readonly grpc_port: number;
  readonly metrics_port: number;
  readonly log_file: string;
}

const RESTART_WINDOW_MS = 5 * 60_000;
const MAX_BACKOFF_MS = 30_000;

export class LocalDeployer implements ModelDeployer {
  private readonly models = new Map<string, Slots>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private persistChain: Promise<void> = Promise.resolve();
  private closed = false;
  private readonly replicas: number;
  private readonly readyTimeoutMs: number;
  private readonly maxRestarts: number;
  private readonly drainMs: number;
  private readonly stopGraceMs: number;

  private constructor(private readonly options: LocalDeployerOptions) {
    this.replicas = options.replicas ?? 1;
    this.readyTimeoutMs = options.readyTimeoutMs ?? 120_000;
    this.maxRestarts = options.maxRestarts ?? 2;
    this.drainMs = options.drainMs ?? 3_000;
    this.stopGraceMs = options.stopGraceMs ?? 15_000;
  }

  /** Creates the deployer and adopts the live processes a previous promoter left behind. */
  static async create(options: LocalDeployerOptions): Promise<LocalDeployer> {
    const deployer = new LocalDeployer(options);
    await mkdir(path.join(options.stateDir, 'logs'), { recursive: true });
    await deployer.adopt();
    return deployer;
  }

  private get registryFile(): string {
    return path.join(this.options.stateDir, 'processes.json');
  }

  private slots(model: string): Slots {
    let s = this.models.get(model);
    if (!s) {
      s = { stable: undefined, canary: undefined, retiring: [] };
      this.models.set(model, s);
    }
    return s;
  }

  async deployCanary(ref: ModelRef): Promise<void> {
    this.assertOpen();
    const s = this.slots(ref.model);
    // The same version again is a no-op even when it crash-loops: readiness says `failed`, the
    // controller decides, and the supervisor keeps retrying meanwhile (like CrashLoopBackOff).
    if (s.canary && sameRef(s.canary.ref, ref)) return;
    if (s.canary) this.retire(s, s.canary);
    s.canary = this.reinstate(s, ref, 'canary') ?? this.startGroup(ref, 'canary');
    await this.persist();
  }

  async deployStable(ref: ModelRef): Promise<void> {
    this.assertOpen();
    const s = this.slots(ref.model);
    if (s.stable && sameRef(s.stable.ref, ref)) return;
    if (s.stable) this.retire(s, s.stable);
    if (s.canary && sameRef(s.canary.ref, ref) && !groupFailed(s.canary)) {
      // Promotion: the canary's processes become the stable track; nothing restarts.
      s.stable = s.canary;
      s.stable.track = 'stable';
      s.canary = undefined;
    } else {
      s.stable = this.reinstate(s, ref, 'stable') ?? this.startGroup(ref, 'stable');
    }
    await this.persist();
  }

  async removeCanary(model: string): Promise<void> {
    const s = this.slots(model);
    if (!s.canary) return;
    this.retire(s, s.canary);
    s.canary = undefined;
    await this.persist();
  }

  readiness(model: string, track: Track): Promise<Readiness> {
    const g = this.slots(model)[track];
    if (!g) return Promise.resolve({ state: 'failed', reason: `no ${track} track deployed for ${model}` });
    return groupReadiness(g);
  }

  prune(model: string, inUseTargets: readonly string[]): Promise<void> {
    const s = this.slots(model);
    const inUse = new Set(inUseTargets.flatMap(targetPorts));
    for (const g of s.retiring) {
      if (g.stopping || g.replicas.some((r) => r.grpcPort > 0 && inUse.has(r.grpcPort))) continue;
      const wait = Math.max(0, (g.retiredAt ?? 0) + this.drainMs - Date.now());
      g.stopping = true;
      const timer = setTimeout(() => {
        this.timers.delete(timer);
        void this.stopGroup(s, g);
      }, wait);
      this.timers.add(timer);
    }
    return Promise.resolve();
  }

  metricsTargets(model: string, track: Track): readonly string[] {
    const g = this.slots(model)[track];
    return g ? g.replicas.filter((r) => r.metricsPort > 0).map((r) => `127.0.0.1:${r.metricsPort}`) : [];
  }

  /** Every live /metrics endpoint with its labels: Prometheus HTTP service discovery for `segserve stack`. */
  scrapeTargets(): { target: string; model: string; version: string; track: Track }[] {
    const out: { target: string; model: string; version: string; track: Track }[] = [];
    for (const [model, s] of this.models) {
      for (const g of [s.stable, s.canary, ...s.retiring]) {
        if (!g || g.stopping) continue;
        for (const r of g.replicas) if (r.metricsPort > 0) out.push({ target: `127.0.0.1:${r.metricsPort}`, model, version: g.ref.version, track: g.track });
      }
    }
    return out;
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    const all: Promise<void>[] = [];
    for (const s of this.models.values()) {
      for (const g of [s.stable, s.canary, ...s.retiring]) if (g) all.push(this.stopGroup(s, g));
      s.stable = undefined;
      s.canary = undefined;
    }
    await Promise.all(all);
    await this.persist();
  }

  private assertOpen(): void {
    if (this.closed) throw new Error('local deployer is closed');
  }

  private retire(s: Slots, g: Group): void {
    g.retiredAt = Date.now();
    s.retiring.push(g);
  }

  /** A retired group of the same version that still runs (e.g. rollback within the drain time). */
  private reinstate(s: Slots, ref: ModelRef, track: Track): Group | undefined {
    const i = s.retiring.findIndex((g) => sameRef(g.ref, ref) && !g.stopping && !groupFailed(g));
    if (i < 0) return undefined;
    const [g] = s.retiring.splice(i, 1);
    if (!g) return undefined;
    g.retiredAt = undefined;
    g.track = track;
    return g;
  }

  private startGroup(ref: ModelRef, track: Track): Group {
    const g: Group = { ref, track, replicas: [], stopping: false, retiredAt: undefined };
    for (let i = 0; i < this.replicas; i++) {
      const r: Replica = { index: i, proc: undefined, grpcPort: 0, metricsPort: 0, status: 'starting', failure: undefined, restartTimes: [] };
      g.replicas.push(r);
      void this.supervise(g, r, undefined);
    }
    this.options.log.info('starting inference', { model: ref.model, version: ref.version, track, replicas: this.replicas });
    return g;
  }

  private async stopGroup(s: Slots, g: Group): Promise<void> {
    g.stopping = true;
    // Recorded as retiring until gone: a promoter killed meanwhile stops it on its next start.
    await this.persist();
    await Promise.all(g.replicas.map((r) => (r.proc ? r.proc.stop(this.stopGraceMs) : Promise.resolve())));
    for (const r of g.replicas) r.status = 'stopped';
    s.retiring = s.retiring.filter((x) => x !== g);
    this.options.log.info('stopped inference', { model: g.ref.model, version: g.ref.version, track: g.track });
    await this.persist();
  }

  /** Runs one replica until its group stops: start, wait SERVING, restart on exit, give up on a crash loop. */
  private async supervise(g: Group, r: Replica, adopted: InferenceProcess | undefined): Promise<void> {
    const { ref } = g;
    let proc = adopted;
    while (!g.stopping && !this.closed) {
      try {
        if (!proc) {
          proc = await this.spawnReplica(g, r);
          r.proc = proc;
          await this.persist();
          const ports = await proc.waitServing(this.readyTimeoutMs);
          r.grpcPort = ports.grpcPort;
          r.metricsPort = ports.metricsPort;
          await this.waitHealthy(proc, r.grpcPort);
          r.status = 'ready';
          r.failure = undefined;
          this.options.log.info('inference ready', { model: ref.model, version: ref.version, track: g.track, pid: proc.pid, grpc_port: r.grpcPort, metrics_port: r.metricsPort });
          await this.persist();
        }
        const code = await proc.exited();
        if (g.stopping || this.closed) break;
        throw new Error(`exited with code ${String(code)}; last log: ${await proc.lastLogLines()}`);
      } catch (err) {
        if (g.stopping || this.closed) break;
        const message = err instanceof Error ? err.message : String(err);
        await proc?.stop(this.stopGraceMs);
        proc = undefined;
        const now = Date.now();
        r.restartTimes = [...r.restartTimes.filter((t) => now - t < RESTART_WINDOW_MS), now];
        if (r.restartTimes.length > this.maxRestarts) {
          if (r.status !== 'failed') this.options.log.warn('inference crash-looping', { model: ref.model, version: ref.version, track: g.track, reason: message });
          r.status = 'failed';
          r.failure = `crash loop (${r.restartTimes.length} failures in 5 min): ${message}`;
        } else {
          r.status = 'starting';
          r.failure = message;
          this.options.log.warn('inference restarting', { model: ref.model, version: ref.version, track: g.track, reason: message });
        }
        await this.backoff(g, Math.min(500 * 2 ** (r.restartTimes.length - 1), MAX_BACKOFF_MS));
      }
    }
  }

  /** Sleeps before a restart, cut short when the group is stopped. */
  private async backoff(g: Group, ms: number): Promise<void> {
    const until = Date.now() + ms;
    while (Date.now() < until && !g.stopping && !this.closed) await new Promise((res) => setTimeout(res, Math.min(250, until - Date.now())));
  }

  private async spawnReplica(g: Group, r: Replica): Promise<InferenceProcess> {
    const launch = await this.options.resolve(g.ref);
    const logFile = path.join(this.options.stateDir, 'logs', `${g.ref.model}-${g.ref.version}-${r.index}.log`);
    return InferenceProcess.spawn({
      command: this.options.command,
      args: launch.args,
      logFile,
      env: {
        ...this.options.env,
        ...launch.env,
        ...this.options.envFor?.(g.ref, g.track),
        // Restarts keep their ports so the routed target stays valid.
        SEGSERVE_GRPC_PORT: String(r.grpcPort),
        SEGSERVE_METRICS_PORT: String(r.metricsPort),
      },
    });
  }

  private async waitHealthy(proc: InferenceProcess, port: number): Promise<void> {
    const deadline = Date.now() + this.readyTimeoutMs;
    while (!(await healthServing(port))) {
      if (proc.hasExited) throw new Error(`exited with code ${String(proc.code)} before healthy; last log: ${await proc.lastLogLines()}`);
      if (Date.now() > deadline) throw new Error(`not SERVING on grpc.health.v1 after ${this.readyTimeoutMs} ms`);
      await new Promise((res) => setTimeout(res, 200));
    }
  }

  private persist(): Promise<void> {
    const entries: RegistryEntry[] = [];
    for (const [model, s] of this.models) {
      const groups: [Group | undefined, Track | 'retiring'][] = [[s.stable, 'stable'], [s.canary, 'canary'], ...s.retiring.map((g): [Group, 'retiring'] => [g, 'retiring'])];
      for (const [g, slot] of groups) {
        if (!g) continue;
        // Every live process is recorded, so that none can outlive a killed promoter unseen.
        for (const r of g.replicas) {
          if (!r.proc || r.proc.hasExited) continue;
          entries.push({ model, version: g.ref.version, sha256: g.ref.sha256, slot: g.stopping ? 'retiring' : slot, index: r.index, pid: r.proc.pid, grpc_port: r.grpcPort, metrics_port: r.metricsPort, log_file: r.proc.logFile });
        }
      }
    }
    const file = this.registryFile;
    this.persistChain = this.persistChain.then(async () => {
      await writeFile(`${file}.tmp`, JSON.stringify({ processes: entries }, null, 1));
      await rename(`${file}.tmp`, file);
    });
    return this.persistChain;
  }

  /** Adopts processes listed in the registry that are alive and SERVING on their port. */
  private async adopt(): Promise<void> {
    const text = await readFile(this.registryFile, 'utf8').catch(() => undefined);
    if (!text) return;
    let entries: RegistryEntry[] = [];
    try {
      entries = (JSON.parse(text) as { processes?: RegistryEntry[] }).processes ?? [];
    } catch {
      this.options.log.warn('ignoring unreadable process registry', { file: this.registryFile });
    }
    const groups = new Map<string, Group>();
    for (const e of entries) {
      const proc = await InferenceProcess.adopt(e.pid, e.log_file);
      if (!proc) continue;
      // Draining, still starting or unhealthy when the previous promoter died: stop it (the
      // state's tracks get fresh processes) rather than route to something half-alive.
      if (e.slot === 'retiring' || e.grpc_port <= 0 || !(await healthServing(e.grpc_port))) {
        void proc.stop(this.stopGraceMs);
        continue;
      }
      const key = `${e.model}/${e.slot}/${e.version}`;
      let g = groups.get(key);
      const s = this.slots(e.model);
      if (!g) {
        g = { ref: { model: e.model, version: e.version, sha256: e.sha256 }, track: e.slot, replicas: [], stopping: false, retiredAt: undefined };
        groups.set(key, g);
        s[e.slot] = g;
      }
      const r: Replica = { index: e.index, proc, grpcPort: e.grpc_port, metricsPort: e.metrics_port, status: 'ready', failure: undefined, restartTimes: [] };
      g.replicas.push(r);
      this.options.log.info('adopted inference', { model: e.model, version: e.version, track: e.slot, pid: e.pid, grpc_port: e.grpc_port });
      void this.supervise(g, r, proc);
    }
    await this.persist();
  }
}

async function groupReadiness(g: Group): Promise<Readiness> {
  const failed = g.replicas.find((r) => r.status === 'failed');
  if (failed) return { state: 'failed', reason: `${g.ref.model} ${g.ref.version} (${g.track}): ${failed.failure ?? 'failed'}` };
  const notReady = g.replicas.filter((r) => r.status !== 'ready');
  if (notReady.length > 0) {
    const why = notReady.map((r) => r.failure).find((f) => f !== undefined);
    return { state: 'progressing', detail: `${notReady.length}/${g.replicas.length} replicas starting${why ? ` (last failure: ${why})` : ''}` };
  }
  const serving = await Promise.all(g.replicas.map((r) => healthServing(r.grpcPort)));
  if (serving.includes(false)) return { state: 'progressing', detail: 'a replica is not SERVING' };
  return { state: 'ready', target: groupTarget(g) };
}

function groupTarget(g: Group): string {
  return `ipv4:${g.replicas.map((r) => `127.0.0.1:${r.grpcPort}`).join(',')}`;
}

function groupFailed(g: Group): boolean {
  return g.replicas.some((r) => r.status === 'failed');
}

function sameRef(a: ModelRef, b: ModelRef): boolean {
  return a.model === b.model && a.version === b.version && a.sha256 === b.sha256;
}

/** Ports of an `ipv4:127.0.0.1:<port>[,…]` target (other target kinds have none here). */
export function targetPorts(target: string): number[] {
  if (!target.startsWith('ipv4:')) return [];
  return target
    .slice('ipv4:'.length)
    .split(',')
    .map((hp) => Number(hp.slice(hp.lastIndexOf(':') + 1)))
    .filter((p) => Number.isInteger(p) && p > 0);
}
