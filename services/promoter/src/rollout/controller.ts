// One model's rollout loop — the "act at the edge" half of domain/rollout.ts. Each tick:
// read the state, make the tracks match it (converge), look at what the state asks for
// (readiness, verification, metrics), decide, write with compare-and-set, publish the events.
// Everything it does is derived from the state in KV, so a restarted promoter picks up exactly
// where the last one stopped, and a write that lost the race is simply decided again.
import type { Track } from '@segserve/proto';
import { analyzeBake, analyzeCanary, fromBucketPairs, type Analysis, type PairedLatencies } from '../domain/canary-analysis.js';
import type { CandidateVerifier, GoldenReplayer, Logger, MetricsSource, ModelDeployer, Readiness, TrackMetrics, VerificationReport } from '../domain/ports.js';
import { analysisWindowSeconds, decide, desiredTracks, observationsNeeded, type Needs, type Observation, type RolloutEvent, type RolloutRecord, type RolloutSettings } from '../domain/rollout.js';
import type { PromoterTelemetry } from './telemetry.js';

export interface StoredRollout {
  readonly record: RolloutRecord;
  /** KV revision: the compare-and-set guard of the next write. */
  readonly revision: number;
}

export interface RolloutStateStore {
  get(model: string): Promise<StoredRollout | null>;
  /** Throws an error with `name === 'RolloutConflictError'` when `expected` is stale. */
  write(record: RolloutRecord, expected: StoredRollout | null, now: Date): Promise<StoredRollout>;
  list(): Promise<StoredRollout[]>;
}

export interface RolloutEventSink {
  /** Publishes on ROLLOUT_EVENTS; `msgId` makes a re-publication after a restart a no-op. */
  publish(event: RolloutEvent, msgId: string): Promise<void>;
}

export interface ControllerDeps {
  readonly store: RolloutStateStore;
  readonly deployer: ModelDeployer;
  readonly verifier: CandidateVerifier;
  readonly metrics: MetricsSource;
  readonly replayer: GoldenReplayer;
  readonly events: RolloutEventSink;
  readonly telemetry: PromoterTelemetry;
  readonly settings: (model: string) => RolloutSettings;
  readonly log: Logger;
  readonly clock: () => Date;
  /** Longest sleep between ticks, so nothing waits on a timer alone (ms, default 5000). */
  readonly maxSleepMs?: number;
}

const NO_METRICS: TrackMetrics = { requests: 0, errors: 0, latencyP95Seconds: null, rssBytes: null, memoryLimitBytes: null };

export function isConflict(err: unknown): boolean {
  return err instanceof Error && err.name === 'RolloutConflictError';
}

export class ModelController {
  private driving: Promise<void> | undefined;
  private wakeUp: (() => void) | undefined;
  private lastWritten = -1;
  private readonly replays = new Map<Track, Promise<void>>();
  /** Latencies of the golden images replayed as pairs (canary, stable), by when they came back. */
  private paired: { readonly at: number; readonly canaryMs: number; readonly stableMs: number }[] = [];

  constructor(
    readonly model: string,
    private readonly deps: ControllerDeps,
    private readonly signal: AbortSignal,
  ) {}

  /** Runs the loop unless it already runs; resolves when the model is settled (or on shutdown). */
  drive(): Promise<void> {
    this.driving ??= this.loop().finally(() => {
      this.driving = undefined;
    });
    return this.driving;
  }

  get isDriving(): boolean {
    return this.driving !== undefined;
  }

  /** Someone (the CLI through the control subject, another promoter) changed the state. */
  notifyChange(revision: number): void {
    if (revision === this.lastWritten) return;
    this.wakeUp?.();
    void this.drive();
  }

  /** Records our own write of the state (the start of a rollout happens outside the loop). */
  noteWritten(stored: StoredRollout, events: readonly RolloutEvent[]): Promise<void> {
    this.lastWritten = stored.revision;
    this.deps.telemetry.observeState(stored.record);
    this.deps.telemetry.observeEvents(events, stored.record);
    return this.publish(events, stored.revision);
  }

  private async loop(): Promise<void> {
    const { log, clock } = this.deps;
    while (!this.signal.aborted) {
      let wake: Date | null;
      try {
        const stored = await this.deps.store.get(this.model);
        if (!stored) return;
        wake = await this.tick(stored);
      } catch (err) {
        if (this.signal.aborted) return;
        log.error('rollout tick failed; retrying', { model: this.model, error: err });
        wake = new Date(clock().getTime() + this.deps.settings(this.model).pollMs * 5);
      }
      if (wake === null) return;
      await this.sleepUntil(wake);
    }
  }

  /** One read → converge → observe → decide → write. Returns when to tick again (null: settled). */
  private async tick(stored: StoredRollout): Promise<Date | null> {
    const { store, clock, log } = this.deps;
    const settings = this.deps.settings(this.model);
    const s = stored.record;
    await this.converge(s);
    const obs = await this.observe(s, settings, observationsNeeded(s, clock()));
    if (this.signal.aborted) return null;
    const d = decide(settings, s, obs, clock());
    if (!d.changed) return d.wakeAt;
    let written: StoredRollout;
    try {
      written = await store.write(d.state, stored, clock());
    } catch (err) {
      if (!isConflict(err)) throw err;
      log.info('rollout state changed under us; deciding again', { model: this.model });
      return clock();
    }
    for (const e of d.events) {
      if (e.type === 'check') log.info('check', { model: this.model, phase: e.phase, step: e.step, verdict: e.verdict, reason: e.reason, failed_checks: e.failed_checks });
      else log.info(e.type === 'phase' ? 'phase' : e.type, { model: this.model, phase: e.phase, step: e.step, weight: e.weight, version: e.version, reason: e.reason, reason_code: e.reason_code });
    }
    await this.noteWritten(written, d.events);
    this.startReplays(d.replay, written.record, settings);
    // Converge to the new state at once (e.g. stop what is no longer routed to).
    return clock();
  }

  /** Makes each track run what the state says; idempotent, so it runs on every tick. */
  private async converge(s: RolloutRecord): Promise<void> {
    const { deployer, log } = this.deps;
    const want = desiredTracks(s);
    try {
      if (want.stable) await deployer.deployStable(want.stable);
      if (want.canary === null) await deployer.removeCanary(this.model);
      else if (want.canary !== 'keep') await deployer.deployCanary(want.canary);
      const inUse = [s.stable?.target, s.canary?.target].filter((t): t is string => typeof t === 'string' && t !== '');
      await deployer.prune?.(this.model, inUse);
    } catch (err) {
      // Readiness reports the consequence; the next tick tries again.
      log.warn('could not converge the tracks', { model: this.model, phase: s.phase, error: err });
    }
  }

  private async observe(s: RolloutRecord, settings: RolloutSettings, needs: Needs): Promise<Observation> {
    const [canary, stable] = await Promise.all([needs.canary ? this.readiness('canary') : undefined, needs.stable ? this.readiness('stable') : undefined]);
    const obs: { -readonly [K in keyof Observation]: Observation[K] } = {};
    if (canary) obs.canary = canary;
    if (stable) obs.stable = stable;
    if (needs.verifyWhenReady && canary?.state === 'ready') obs.verification = await this.verify(s, canary.target);
    if (needs.analysis) obs.analysis = await this.analyze(s, settings, needs.analysis);
    return obs;
  }

  private async readiness(track: Track): Promise<Readiness> {
    try {
      return await this.deps.deployer.readiness(this.model, track);
    } catch (err) {
      return { state: 'progressing', detail: `readiness unknown: ${err instanceof Error ? err.message : String(err)}` };
    }
  }

  private async verify(s: RolloutRecord, target: string): Promise<VerificationReport> {
    const c = s.candidate;
    if (!c) return { ok: false, reasonCode: 'inconsistent_state', reason: 'no candidate recorded', claimed: {}, measured: {}, stableMeasured: null };
    const candidate = { id: c.id, ref: { model: this.model, version: c.version, sha256: c.sha256 }, claimed: c.claimed, goldenSha256: c.golden_sha256, ...(c.baseline ? { baseline: c.baseline } : {}) };
    this.deps.log.info('verifying', { model: this.model, version: c.version, target });
    try {
      return await this.deps.verifier.verify(candidate, target, this.signal);
    } catch (err) {
      if (this.signal.aborted) throw err;
      const reason = `verification could not run: ${err instanceof Error ? err.message : String(err)}`;
      return { ok: false, reasonCode: 'verification_error', reason, claimed: c.claimed, measured: {}, stableMeasured: null };
    }
  }

  private async analyze(s: RolloutRecord, settings: RolloutSettings, kind: 'canary' | 'bake'): Promise<Analysis> {
    const { metrics } = this.deps;
    const window = analysisWindowSeconds(settings, s, this.deps.clock());
    try {
      if (kind === 'canary') {
        const canaryVersion = s.canary?.version ?? s.candidate?.version ?? '';
        const [c, st] = await Promise.all([
          metrics.trackMetrics(this.model, canaryVersion, 'canary', window),
          s.stable ? metrics.trackMetrics(this.model, s.stable.version, 'stable', window) : Promise.resolve(NO_METRICS),
        ]);
        return analyzeCanary(settings.canary, c, st, this.pairedSince(s.window_start));
      }
      const st = s.stable ? await metrics.trackMetrics(this.model, s.stable.version, 'stable', window) : NO_METRICS;
      return analyzeBake(settings.canary, st, { p95Seconds: s.baseline_p95_seconds ?? null, buckets: fromBucketPairs(s.baseline_latency_buckets) });
    } catch (err) {
      // No figures is no verdict: hold (never pass, never fail) until the source answers.
      const detail = `metrics from ${metrics.name} unavailable: ${err instanceof Error ? err.message : String(err)}`;
      return { verdict: 'hold', checks: [{ check: 'requests', result: 'hold', value: null, threshold: settings.canary.minRequests, detail }], reason: `hold: ${detail}`, needSamples: [], stableLatencyP95Seconds: s.baseline_p95_seconds ?? null, stableLatencyBuckets: s.baseline_latency_buckets ?? null };
    }
  }

  /** The pairs replayed in the window that starts at `windowStart` (older ones are dropped). */
  private pairedSince(windowStart: string | undefined): PairedLatencies {
    const since = windowStart ? Date.parse(windowStart) : -Infinity;
    this.paired = this.paired.filter((p) => p.at >= since);
    return { canary: this.paired.map((p) => p.canaryMs), stable: this.paired.map((p) => p.stableMs) };
  }

  private startReplays(tracks: readonly Track[], s: RolloutRecord, settings: RolloutSettings): void {
    const { replayer, log, clock } = this.deps;
    const spreadMs = Math.round(settings.canary.intervalMs * 0.8);
    const requests = Math.max(1, settings.canary.minRequests);
    const targets = { canary: s.canary?.target ?? '', stable: s.stable?.target ?? '' };
    // In the canary, through both tracks: as pairs, so the latency check can compare like for like.
    if (s.phase === 'Canary' && replayer.replayPaired && tracks.includes('canary') && tracks.includes('stable') && targets.canary && targets.stable && !this.replays.has('canary') && !this.replays.has('stable')) {
      const run = replayer
        .replayPaired(this.model, targets, requests, this.signal, { spreadMs, onPair: (canaryMs, stableMs) => this.paired.push({ at: clock().getTime(), canaryMs, stableMs }) })
        .then(
          (r) => log.info('golden replay done', { model: this.model, track: 'canary+stable', paired: true, targets, sent: r.sent, failed: r.failed }),
          (err: unknown) => log.warn('golden replay failed', { model: this.model, track: 'canary+stable', targets, error: err }),
        )
        .finally(() => {
          this.replays.delete('canary');
          this.replays.delete('stable');
        });
      this.replays.set('canary', run);
      this.replays.set('stable', run);
      return;
    }
    for (const track of tracks) {
      const target = track === 'canary' ? s.canary?.target : s.stable?.target;
      if (!target || this.replays.has(track)) continue;
      const run = replayer
        .replay(this.model, target, requests, this.signal, { spreadMs })
        .then(
          (r) => log.info('golden replay done', { model: this.model, track, target, sent: r.sent, failed: r.failed }),
          (err: unknown) => log.warn('golden replay failed', { model: this.model, track, target, error: err }),
        )
        .finally(() => this.replays.delete(track));
      this.replays.set(track, run);
    }
  }

  private async publish(events: readonly RolloutEvent[], revision: number): Promise<void> {
    for (const [i, e] of events.entries()) {
      try {
        await this.deps.events.publish(e, `${this.model}:${revision}:${i}`);
      } catch (err) {
        // The state in KV is the truth; an event lost while NATS is away is only audit.
        this.deps.log.warn('could not publish rollout event', { model: this.model, type: e.type, error: err });
      }
    }
  }

  private sleepUntil(wake: Date): Promise<void> {
    const ms = Math.min(Math.max(0, wake.getTime() - this.deps.clock().getTime()), this.deps.maxSleepMs ?? 5_000);
    if (ms === 0 || this.signal.aborted) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.signal.removeEventListener('abort', done);
        this.wakeUp = undefined;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.signal.addEventListener('abort', done, { once: true });
      this.wakeUp = done;
    });
  }

  /** Waits for running golden replays (shutdown). */
  async settleReplays(): Promise<void> {
    await Promise.all(this.replays.values());
  }
}
