// The whole system on loopback for the rollout end-to-end tests: a real nats-server, an
// optional real Prometheus (fed from the promoter's service-discovery endpoint), the promoter
// with the local driver serving tiny-seg/2 as the first stable, the gateway following the
// rollout state, generated gRPC load through the gateway, and the CLI as CI would use it.
import { readFile, rm, symlink, mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { Kvm } from '@nats-io/kv';
import { DEFAULT_MAX_MESSAGE_BYTES, NATS_NAMES, loadProtos, type SegmenterClient } from '@segserve/proto';
import { generateSigningKeys } from '../../../services/promoter/src/adapters/signing.js';
import type { RolloutEvent, RolloutRecord } from '../../../services/promoter/src/domain/rollout.js';
import { startNats, type NatsServer } from '../../helpers/nats.js';
import { startPrometheus, type PrometheusServer } from '../../helpers/prometheus.js';
import { REPO_ROOT, freePort, spawnSegserve, tempDir, waitFor, type Spawned, type TempDir } from '../../helpers/process.js';

export const MODEL = 'tiny-seg';
export const FIXTURES = path.join(REPO_ROOT, 'test', 'fixtures', 'models');
const GOLDEN = path.join(REPO_ROOT, 'test', 'fixtures', 'golden-tiny');
/** Measured on golden-tiny: v1 has the higher mIoU (0.9729 vs 0.9723), so v1 is the candidate. */
export const CANDIDATE_CLAIMS = { miou: 0.9729, latency_ms_p95: 20, peak_rss_mb: 150 };

export interface CanaryOptions {
  readonly steps?: readonly number[];
  readonly interval?: string;
  readonly bake?: string;
  readonly maxFailedChecks?: number;
  readonly minRequests?: number;
  readonly maxHolds?: number;
}

/** mIoU decides; latency and memory only within very wide bounds (tiny models, busy machine). */
function policy(c: CanaryOptions): string {
  return JSON.stringify({
    model: MODEL,
    objectives: [
      { metric: 'miou', better: 'higher', tolerance: 0.0001 },
      { metric: 'latency_ms_p95', better: 'lower', tolerance: 1000, relative: true },
      { metric: 'peak_rss_mb', better: 'lower', tolerance: 1, relative: true },
    ],
    limits: { miou_min: 0.5, latency_ms_p95: 100_000, peak_rss_mb: 4_000 },
    min_improvement: { miou: 0.0001, latency_ms_p95: 0.99, peak_rss_mb: 0.99 },
    verify: { golden: true, claim_tolerance: { miou: 0.01, latency_ms_p95: 1000 } },
    canary: {
      steps: c.steps ?? [10, 25, 50],
      interval: c.interval ?? '2s',
      min_requests: c.minRequests ?? 10,
      max_failed_checks: c.maxFailedChecks ?? 2,
      max_error_rate: 0.01,
      // Tiny models answer in a few ms: histogram buckets and a loaded 2-core machine make
      // their p95 ratio noisy, so only a gross slowdown (the injected 1.5 s) fails it. The
      // check holds while the ratio's interval straddles the limit: on a loaded machine the
      // stable slows down too and the slow canary's ratio came close to ×8, which held until
      // no_evidence; ×5 is decisive for that canary and far above an equal one.
      max_latency_ratio: 5,
      max_rss_fraction: 0.9,
      bake: c.bake ?? '3s',
      // A check holds while its evidence is undecided. With both cores busy a slow canary gets so
      // few requests that its ratio's interval kept straddling the limit until the rollout ended
      // no_evidence; the tests wait for the evidence instead (their deadlines bound the wait).
      max_holds: c.maxHolds ?? 200,
    },
  });
}

export interface LoadResult {
  readonly at: number;
  readonly version: string | null;
  readonly error: string | null;
}

export interface Load {
  readonly results: LoadResult[];
  failures(): LoadResult[];
  versions(since?: number): Map<string, number>;
  stop(): Promise<void>;
}

export interface StackOptions {
  readonly prometheus?: boolean;
  readonly canary?: CanaryOptions;
  /** SEGSERVE_LOCAL_VERSION_ENV of the promoter (per-version environment, e.g. fault injection). */
  readonly versionEnv?: Record<string, Record<string, string>>;
}

export class E2eStack implements AsyncDisposable {
  promoter!: Spawned;
  gateway!: Spawned;
  nc!: NatsConnection;
  prom: PrometheusServer | undefined;
  readonly events: RolloutEvent[] = [];
  private stateDir = '';
  private promoterEnv: Record<string, string> = {};
  private sdSync: NodeJS.Timeout | undefined;
  private gatewayGrpc = 0;
  private readonly loads: Load[] = [];
  readonly promoterOutputs: string[] = [];

  private constructor(
    readonly nats: NatsServer,
    private readonly dir: TempDir,
    private readonly metricsPort: number,
  ) {}

  static async start(options: StackOptions = {}): Promise<E2eStack> {
    const dir = await tempDir('segserve-e2e-');
    // The default limits of the NATS objects (20 GiB of model store) need a roomy JetStream.
    const nats = await startNats({ jetstream: false, extraConfig: `jetstream { store_dir: ${JSON.stringify(path.join(dir.path, 'js'))}, max_memory_store: 256MB, max_file_store: 32GB }` });
    const stack = new E2eStack(nats, dir, await freePort());
    try {
      await stack.init(options);
    } catch (err) {
      await stack[Symbol.asyncDispose]();
      throw err;
    }
    return stack;
  }

  get url(): string {
    return this.nats.url;
  }

  private async init(options: StackOptions): Promise<void> {
    const golden = path.join(this.dir.path, 'golden');
    await mkdir(path.join(golden, MODEL), { recursive: true });
    await symlink(GOLDEN, path.join(golden, MODEL, 'golden'));
    await writeFile(path.join(this.dir.path, 'policy.json'), policy(options.canary ?? {}));
    const keys = generateSigningKeys();
    await writeFile(path.join(this.dir.path, 'publisher.seed'), keys.seed, { mode: 0o600 });
    if (options.prometheus) this.prom = await startPrometheus({ targets: [{ job: 'promoter', targets: [`127.0.0.1:${this.metricsPort}`] }], scrapeIntervalSeconds: 1 });
    this.promoterEnv = {
      SEGSERVE_NATS_URL: this.url,
      SEGSERVE_POLICY: path.join(this.dir.path, 'policy.json'),
      SEGSERVE_DEPLOYER: 'local',
      SEGSERVE_METRICS_PORT: String(this.metricsPort),
      SEGSERVE_SIGNERS: keys.publicKey,
      SEGSERVE_GOLDEN_ROOT: golden,
      SEGSERVE_MODEL_ROOTS: FIXTURES,
      SEGSERVE_INITIAL_STABLE: path.join(FIXTURES, MODEL, '2'),
      SEGSERVE_MAX_CONCURRENCY: '1',
      ...(this.prom ? { SEGSERVE_PROMETHEUS_URL: this.prom.url } : {}),
      ...(options.versionEnv ? { SEGSERVE_LOCAL_VERSION_ENV: JSON.stringify(options.versionEnv) } : {}),
    };
    await this.startPromoter();
    this.nc = await connect({ servers: this.url, maxReconnectAttempts: -1, reconnectTimeWait: 250 });
    const sub = this.nc.subscribe(NATS_NAMES.rolloutEventsSubject(MODEL));
    void (async () => {
      for await (const m of sub) this.events.push(m.json<RolloutEvent>());
    })();
    await waitFor(async () => (await this.state())?.stable?.version === '2', { timeoutMs: 120_000, what: 'the initial stable tiny-seg/2 in the rollout state' });
    this.gateway = spawnSegserve(['gateway'], { env: { SEGSERVE_NATS_URL: this.url, SEGSERVE_HTTP_PORT: '0', SEGSERVE_GRPC_PORT: '0', SEGSERVE_HOST: '127.0.0.1' }, name: 'gateway' });
    const listening = await this.gateway.waitForStartup('gateway', 90_000);
    this.gatewayGrpc = listening.grpc_port;
    // Listening is not ready: the routes arrive with the first read of the rollout state.
    await waitFor(() => fetch(`http://127.0.0.1:${listening.http_port}/readyz`).then((r) => r.ok, () => false), { timeoutMs: 60_000, what: 'gateway /readyz' });
    if (this.prom) this.syncPrometheusTargets();
  }

  /** (Re)starts the promoter with the same environment (plus `extra`). */
  async startPromoter(extra: Record<string, string> = {}): Promise<Spawned> {
    this.promoter = spawnSegserve(['promoter'], { env: { ...this.promoterEnv, ...extra }, name: 'promoter' });
    const running = await this.promoter.waitForStartup('promoter', 180_000);
    this.stateDir = running.state_dir ?? '';
    return this.promoter;
  }

  /**
   * Kills the promoter (its inference processes keep serving) and starts it again with another
   * canary policy and per-version environment; it adopts the processes it finds.
   */
  async restartPromoter(options: { canary?: CanaryOptions; versionEnv?: Record<string, Record<string, string>> }): Promise<void> {
    await this.killPromoter();
    await writeFile(path.join(this.dir.path, 'policy.json'), policy(options.canary ?? {}));
    await this.startPromoter({ SEGSERVE_LOCAL_VERSION_ENV: JSON.stringify(options.versionEnv ?? {}) });
  }

  /** SIGKILL: no cleanup at all, the way a crashed or evicted promoter goes. */
  async killPromoter(): Promise<void> {
    this.promoter.kill('SIGKILL');
    await this.promoter.exited;
    this.promoterOutputs.push(this.promoter.output());
  }

  /** Prometheus scrapes what the promoter's /sd/inference lists (what `segserve stack` configures as http_sd). */
  private syncPrometheusTargets(): void {
    let last = '';
    const sync = async (): Promise<void> => {
      const groups = await fetch(`http://127.0.0.1:${this.metricsPort}/sd/inference`).then((r) => r.json() as Promise<{ targets: string[] }[]>, () => undefined);
      if (!groups || !this.prom) return;
      const targets = groups.flatMap((g) => g.targets).sort();
      const key = targets.join(',');
      if (key === last) return;
      last = key;
      await this.prom.setTargets([{ job: 'promoter', targets: [`127.0.0.1:${this.metricsPort}`] }, { job: 'inference', targets }]).catch(() => (last = ''));
    };
    this.sdSync = setInterval(() => void sync(), 500);
  }

  async state(): Promise<RolloutRecord | null> {
    const kv = await new Kvm(this.nc).open(NATS_NAMES.rolloutsKv);
    const e = await kv.get(MODEL);
    return e && e.operation === 'PUT' && e.length > 0 ? e.json<RolloutRecord>() : null;
  }

  waitState(pred: (s: RolloutRecord) => boolean, what: string, timeoutMs = 180_000): Promise<RolloutRecord> {
    return waitFor(
      async () => {
        const s = await this.state().catch(() => null);
        return s && pred(s) ? s : undefined;
      },
      { timeoutMs, intervalMs: 200, what },
    );
  }

  /** `segserve publish` of a fixture version with the given claims; returns the experiment id. */
  async publish(version: string, id: string, claims: Record<string, number> = CANDIDATE_CLAIMS): Promise<string> {
    const resultFile = path.join(this.dir.path, `result-${id}.json`);
    await writeFile(resultFile, JSON.stringify({ metrics: claims }));
    const p = this.cli(['publish', '--model', path.join(FIXTURES, MODEL, version), '--result', resultFile, '--golden', GOLDEN, '--seed-file', path.join(this.dir.path, 'publisher.seed'), '--id', id, '--json']);
    const code = await p.exited;
    if (code !== 0) throw new Error(`segserve publish failed (${String(code)}):\n${p.output()}`);
    return (JSON.parse(p.lines().find((l) => l.startsWith('{')) ?? '{}') as { result: { id: string } }).result.id;
  }

  /** The CLI against this stack. */
  cli(args: readonly string[]): Spawned {
    return spawnSegserve(args, { env: { SEGSERVE_NATS_URL: this.url }, name: `segserve ${args.slice(0, 2).join(' ')}` });
  }

  /** Promoter metric value (sum over series matching the label filter). */
  async promoterMetric(name: string, labels: Record<string, string>): Promise<number> {
    const text = await fetch(`http://127.0.0.1:${this.metricsPort}/metrics`).then((r) => r.text());
    let sum = 0;
    for (const line of text.split('\n')) {
      if (!line.startsWith(`${name}{`)) continue;
      if (Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) sum += Number(line.slice(line.lastIndexOf(' ') + 1));
    }
    return sum;
  }

  /** gRPC Segment calls through the gateway, `workers` at a time with a pause between calls. */
  startLoad(workers = 2, pauseMs = 25): Load {
    const { segmenter } = loadProtos();
    const client: SegmenterClient = new segmenter.segserve.v1.Segmenter(`127.0.0.1:${this.gatewayGrpc}`, grpc.credentials.createInsecure(), { 'grpc.max_receive_message_length': DEFAULT_MAX_MESSAGE_BYTES });
    const results: LoadResult[] = [];
    let running = true;
    const image = readFile(path.join(GOLDEN, 'images', 'facade-00.png'));
    const worker = async (): Promise<void> => {
      const bytes = await image;
      while (running) {
        const r = await new Promise<LoadResult>((resolve) => {
          client.Segment({ model: MODEL, image: bytes, mask_format: 'PNG' }, { deadline: Date.now() + 30_000 }, (err, res) => resolve({ at: Date.now(), version: res?.version ?? null, error: err ? `${err.code}: ${err.details}` : null }));
        });
        results.push(r);
        await new Promise((res) => setTimeout(res, pauseMs));
      }
    };
    const all = Promise.all(Array.from({ length: workers }, worker));
    const load: Load = {
      results,
      failures: () => results.filter((r) => r.error !== null),
      versions: (since = 0) => {
        const m = new Map<string, number>();
        for (const r of results) if (r.at >= since && r.version) m.set(r.version, (m.get(r.version) ?? 0) + 1);
        return m;
      },
      stop: async () => {
        running = false;
        await all;
        client.close();
      },
    };
    this.loads.push(load);
    return load;
  }

  phases(experimentId?: string): string[] {
    return this.events.filter((e) => e.type === 'phase' && (!experimentId || e.experiment_id === experimentId)).map((e) => (e.phase === 'Canary' ? `Canary@${e.weight}` : e.phase));
  }

  /** The phases of a rollout once its events have caught up with `last`: the events stream can lag the KV state that `rollout watch` and `waitState` read. */
  phasesUntil(experimentId: string, last: string, timeoutMs = 60_000): Promise<string[]> {
    return waitFor(
      () => {
        const phases = this.phases(experimentId);
        return phases.at(-1) === last ? phases : undefined;
      },
      { timeoutMs, intervalMs: 100, what: `a ${last} event for ${experimentId} (phases when the wait began: ${this.phases(experimentId).join(' ')})` },
    );
  }

  async [Symbol.asyncDispose](): Promise<void> {
    if (this.sdSync) clearInterval(this.sdSync);
    for (const l of this.loads) await l.stop();
    await this.gateway?.stop(10_000);
    await this.promoter?.stop(30_000);
    // A promoter that was SIGKILLed and not restarted leaves its inference processes behind.
    const registry = await readFile(path.join(this.stateDir, 'processes.json'), 'utf8').then((t) => JSON.parse(t) as { processes: { pid: number }[] }, () => ({ processes: [] }));
    for (const p of registry.processes) {
      try {
        process.kill(p.pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
    await this.nc?.close().catch(() => undefined);
    await this.prom?.[Symbol.asyncDispose]();
    await this.nats[Symbol.asyncDispose]();
    if (this.stateDir) await rm(this.stateDir, { recursive: true, force: true });
    await this.dir[Symbol.asyncDispose]();
  }
}
