// Ready = not shutting down and at least one upstream answers grpc.health.v1 SERVING
// (docs/architecture.md#rest). Checks run against every routed target in parallel and are cached briefly, so
// probes and health watchers do not multiply upstream traffic.
import type { Track } from '@segserve/proto';
import type { Router } from './router.js';
import { unaryCall } from './upstream-call.js';

export interface UpstreamHealth {
  readonly model: string;
  readonly track: Track;
  readonly serving: boolean;
}

export interface ReadinessReport {
  readonly ready: boolean;
  readonly shutting_down: boolean;
  readonly upstreams: readonly UpstreamHealth[];
}

export interface ReadinessOptions {
  readonly router: Router;
  /** Cache lifetime of a report, ms. */
  readonly cacheMs?: number;
  /** Deadline of each health check, ms. */
  readonly checkTimeoutMs?: number;
  readonly now?: () => number;
}

export class Readiness {
  readonly #options: ReadinessOptions;
  #shuttingDown = false;
  #cached: { at: number; report: Promise<ReadinessReport> } | undefined;

  constructor(options: ReadinessOptions) {
    this.#options = options;
  }

  /** From now on: not ready, whatever the upstreams say (SIGTERM drain). */
  shutDown(): void {
    this.#shuttingDown = true;
    this.#cached = undefined;
  }

  get shuttingDown(): boolean {
    return this.#shuttingDown;
  }

  check(): Promise<ReadinessReport> {
    const now = (this.#options.now ?? Date.now)();
    if (this.#cached && now - this.#cached.at < (this.#options.cacheMs ?? 1000)) return this.#cached.report;
    const report = this.#probe(now);
    this.#cached = { at: now, report };
    return report;
  }

  async #probe(now: number): Promise<ReadinessReport> {
    const { router } = this.#options;
    const deadline = now + (this.#options.checkTimeoutMs ?? 1000);
    const checks: Array<Promise<UpstreamHealth>> = [];
    for (const state of router.states()) {
      for (const track of ['stable', 'canary'] as const) {
        const upstream = router.trackUpstream(state.model, track);
        if (!upstream) continue;
        checks.push(
          unaryCall<{ status: string }>((md, o, cb) => upstream.health.Check({ service: '' }, md, o, cb), { deadline }, () => undefined).then(
            ({ response }) => ({ model: state.model, track, serving: response.status === 'SERVING' }),
            () => ({ model: state.model, track, serving: false }),
          ),
        );
      }
    }
    const upstreams = await Promise.all(checks);
    const shuttingDown = this.#shuttingDown;
    return { ready: !shuttingDown && upstreams.some((u) => u.serving), shutting_down: shuttingDown, upstreams };
  }
}
