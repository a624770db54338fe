// The rollout loop against in-memory ports: the wiring of decide, compare-and-set, events,
// telemetry, queueing, resumption and manual rollback. Real processes: test/promoter/.
import { describe, expect, it } from 'vitest';
import type { Track, TrackState } from '@segserve/proto';
import type { Candidate, MetricsSource, ModelDeployer, ModelRef, Readiness, TrackMetrics, VerificationReport } from '../domain/ports.js';
import { initialRecord, type RolloutEvent, type RolloutRecord, type RolloutSettings } from '../domain/rollout.js';
import type { RolloutStateStore, StoredRollout } from './controller.js';
import { silentLogger } from '@segserve/runtime';
import { Rollouts } from './rollouts.js';
import { PromoterTelemetry } from './telemetry.js';

const SETTINGS: RolloutSettings = {
  canary: { steps: [10, 25, 50], intervalMs: 40, minRequests: 10, maxFailedChecks: 2, maxErrorRate: 0.01, maxLatencyRatio: 1.5, maxRssFraction: 0.9, bakeMs: 120, bakeExtensions: 2, onNoEvidence: 'fail', maxHolds: 10 },
  readyTimeoutMs: 5_000,
  pollMs: 5,
};
const STABLE: TrackState = { version: '1', sha256: 'a'.repeat(64), target: 'ipv4:127.0.0.1:1001' };
const cand = (id: string, version: string): Candidate => ({ id, ref: { model: 'm', version, sha256: version.repeat(64).slice(0, 64) }, claimed: { miou: 0.9 }, goldenSha256: 'g' });

class MemoryStore implements RolloutStateStore {
  readonly values = new Map<string, StoredRollout>();
  private seq = 0;
  writes = 0;
  get(model: string): Promise<StoredRollout | null> {
    return Promise.resolve(this.values.get(model) ?? null);
  }
  write(record: RolloutRecord, expected: StoredRollout | null, now: Date): Promise<StoredRollout> {
    const current = this.values.get(record.model) ?? null;
    if ((current?.revision ?? null) !== (expected?.revision ?? null)) {
      const err = new Error('conflict');
      err.name = 'RolloutConflictError';
      return Promise.reject(err);
    }
    const stored = { record: JSON.parse(JSON.stringify({ ...record, revision: (expected?.record.revision ?? 0) + 1, updated_at: now.toISOString() })) as RolloutRecord, revision: ++this.seq };
    this.values.set(record.model, stored);
    this.writes++;
    return Promise.resolve(stored);
  }
  list(): Promise<StoredRollout[]> {
    return Promise.resolve([...this.values.values()]);
  }
}

class FakeDeployer implements ModelDeployer {
  tracks: Record<Track, ModelRef | null> = { stable: null, canary: null };
  private port = 2000;
  private readonly targets = new Map<string, string>();
  failing = new Set<string>();
  deployCanary(ref: ModelRef): Promise<void> {
    this.tracks.canary = ref;
    return Promise.resolve();
  }
  deployStable(ref: ModelRef): Promise<void> {
    this.tracks.stable = ref;
    return Promise.resolve();
  }
  removeCanary(): Promise<void> {
    this.tracks.canary = null;
    return Promise.resolve();
  }
  readiness(_model: string, track: Track): Promise<Readiness> {
    const ref = this.tracks[track];
    if (!ref) return Promise.resolve({ state: 'failed', reason: 'none' });
    if (this.failing.has(ref.version)) return Promise.resolve({ state: 'failed', reason: `${ref.version} crash loop` });
    let target = this.targets.get(ref.version);
    if (!target) this.targets.set(ref.version, (target = ref.version === '1' ? STABLE.target : `ipv4:127.0.0.1:${++this.port}`));
    return Promise.resolve({ state: 'ready', target });
  }
  close(): Promise<void> {
    return Promise.resolve();
  }
}

const healthy: TrackMetrics = { requests: 100, errors: 0, latencyP95Seconds: 0.1, rssBytes: 100, memoryLimitBytes: 1000 };

function world(options: { metrics?: (version: string, track: Track) => TrackMetrics; store?: MemoryStore; deployer?: FakeDeployer; verify?: (c: Candidate) => VerificationReport; onReplay?: (target: string) => void; pairs?: (canaryMs: number[], stableMs: number[]) => void } = {}) {
  const store = options.store ?? new MemoryStore();
  const deployer = options.deployer ?? new FakeDeployer();
  const events: RolloutEvent[] = [];
  const verified: string[] = [];
  const replays: string[] = [];
  const telemetry = new PromoterTelemetry();
  const metrics: MetricsSource = { name: 'fake', isOnline: () => Promise.resolve(true), trackMetrics: (_m, version, track) => Promise.resolve(options.metrics?.(version, track) ?? healthy) };
  const rollouts = new Rollouts({
    store,
    deployer,
    verifier: {
      verify: (c) => {
        verified.push(c.id);
        return Promise.resolve(options.verify?.(c) ?? { ok: true, reasonCode: 'verified', reason: 'ok', claimed: c.claimed, measured: c.claimed, stableMeasured: null });
      },
    },
    metrics,
    replayer: {
      replay: (_m, target, n) => {
        replays.push(target);
        options.onReplay?.(target);
        return Promise.resolve({ sent: n, failed: 0 });
      },
      ...(options.pairs
        ? {
            replayPaired: (_m: string, targets: { canary: string; stable: string }, n: number, _signal: AbortSignal, o: { onPair: (c: number, s: number) => void }) => {
              replays.push(`${targets.canary}+${targets.stable}`);
              // Equal sides under a load that swings threefold from pair to pair.
              for (let i = 0; i < n; i++) o.onPair(100 * (1 + (i % 3)), 100 * (1 + (i % 3)));
              return Promise.resolve({ sent: 2 * n, failed: 0 });
            },
          }
        : {}),
    },
    events: { publish: (e) => Promise.resolve(void events.push(e)) },
    telemetry,
    settings: () => SETTINGS,
    log: silentLogger,
    clock: () => new Date(),
    maxSleepMs: 20,
    workingIntervalMs: 10,
  });
  const hooks = { working: () => undefined, signal: new AbortController().signal };
  return { store, deployer, events, verified, replays, telemetry, rollouts, hooks };
}

async function seeded(store = new MemoryStore()): Promise<MemoryStore> {
  await store.write(initialRecord('m', STABLE, new Date()), null, new Date());
  return store;
}

async function metricValue(t: PromoterTelemetry, name: string, labels: Record<string, string>): Promise<number | undefined> {
  const m = await t.registry.getSingleMetric(name)?.get();
  return m?.values.find((v) => Object.entries(labels).every(([k, x]) => v.labels[k] === x))?.value;
}

describe('Rollouts', () => {
  it('takes a good candidate through the canary steps to Succeeded', async () => {
    const w = world({ store: await seeded() });
    const outcome = await w.rollouts.run(cand('e2', '2'), w.hooks);
    expect(outcome).toMatchObject({ outcome: 'promoted', reason: expect.stringMatching(/^2 promoted and baked \(\d+ passing checks? during the bake\)$/) as string });
    const phases = w.events.filter((e) => e.type === 'phase').map((e) => `${e.phase}${e.phase === 'Canary' ? `@${e.weight}` : ''}`);
    expect(phases).toEqual(['Verifying', 'Canary@10', 'Canary@25', 'Canary@50', 'Promoting', 'Baking', 'Succeeded']);
    const final = (await w.store.get('m'))?.record;
    expect(final).toMatchObject({ phase: 'Succeeded', stable: { version: '2' }, canary: null, previous_stable: STABLE });
    expect(w.deployer.tracks).toEqual({ stable: cand('e2', '2').ref, canary: null });
    expect(await metricValue(w.telemetry, 'segserve_promoter_results_total', { outcome: 'promoted' })).toBe(1);
    expect(await metricValue(w.telemetry, 'segserve_rollout_phase', { phase: 'Succeeded' })).toBe(1);
    expect(await metricValue(w.telemetry, 'segserve_promoter_checks_total', { check: 'error_rate', result: 'pass' })).toBeGreaterThanOrEqual(3);
    await w.rollouts.close();
  });

  it('rolls a misbehaving canary back after max_failed_checks, stable untouched', async () => {
    const w = world({ store: await seeded(), metrics: (v) => (v === '2' ? { ...healthy, errors: 30 } : healthy) });
    const outcome = await w.rollouts.run(cand('e2', '2'), w.hooks);
    expect(outcome).toMatchObject({ outcome: 'rolled_back', reasonCode: 'canary_analysis_failed' });
    expect((await w.store.get('m'))?.record).toMatchObject({ phase: 'Failed', stable: STABLE, canary: null });
    expect(w.deployer.tracks).toEqual({ stable: { model: 'm', version: '1', sha256: STABLE.sha256 }, canary: null });
    expect(await metricValue(w.telemetry, 'segserve_promoter_checks_total', { check: 'error_rate', result: 'fail' })).toBe(2);
    await w.rollouts.close();
  });

  it('holds and replays the golden set while there is too little traffic', async () => {
    let calls = 0;
    const w = world({ store: await seeded(), metrics: (v) => (v === '2' && calls++ < 2 ? { ...healthy, requests: 3 } : healthy) });
    await w.rollouts.run(cand('e2', '2'), w.hooks);
    const checks = w.events.filter((e) => e.type === 'check').map((e) => e.verdict);
    expect(checks.slice(0, 2)).toEqual(['hold', 'hold']);
    expect(w.replays.length).toBeGreaterThanOrEqual(1);
    await w.rollouts.close();
  });

  describe('no success without evidence', () => {
    const idle: TrackMetrics = { ...healthy, requests: 0, latencyP95Seconds: null };

    it('no traffic at all and replays that bring none: the canary holds max_holds times and ends Failed (no_evidence), never Succeeded', async () => {
      const w = world({ store: await seeded(), metrics: () => idle });
      const outcome = await w.rollouts.run(cand('e2', '2'), w.hooks);
      expect(outcome).toMatchObject({ outcome: 'rolled_back', reasonCode: 'no_evidence', reason: expect.stringMatching(/^no decisive check at 10%: 10 checks in a row held \(max_holds 10\); last: hold: the canary served 0 requests/) as string });
      expect(w.events.some((e) => e.phase === 'Succeeded')).toBe(false);
      expect(w.events.filter((e) => e.type === 'check').every((e) => e.verdict === 'hold')).toBe(true);
      expect(w.replays.length).toBeGreaterThan(0);
      expect((await w.store.get('m'))?.record).toMatchObject({ phase: 'Failed', stable: STABLE, canary: null });
      await w.rollouts.close();
    });

    it('a bake with no traffic: the golden set is replayed through the new stable; without a passing check it is extended, then Failed (no_evidence) and the previous stable restored', async () => {
      const w = world({ store: await seeded(), metrics: (v, track) => (track === 'stable' && v === '2' ? idle : healthy) });
      const outcome = await w.rollouts.run(cand('e2', '2'), w.hooks);
      // The canary passes on live traffic; once promoted, the new stable serves none.
      expect(outcome).toMatchObject({ outcome: 'rolled_back', reasonCode: 'no_evidence', reason: expect.stringMatching(/^no passing check during the bake and 2 extensions; last: hold: the new stable served 0 requests/) as string });
      expect(w.events.filter((e) => e.type === 'bake_extended')).toHaveLength(2);
      const newStable = w.events.find((e) => e.type === 'phase' && e.phase === 'Baking');
      expect(newStable).toBeDefined();
      const record = (await w.store.get('m'))?.record;
      expect(record).toMatchObject({ phase: 'Failed', stable: STABLE, restore: null });
      // The replay went to the new stable's target during the bake.
      expect(w.replays).toContain('ipv4:127.0.0.1:2001');
      expect(w.deployer.tracks.stable?.version).toBe('1');
      await w.rollouts.close();
    });

    it('a bake with no live traffic succeeds once the golden replay through the new stable gives a passing check', async () => {
      let replayedNewStable = false;
      const w = world({
        store: await seeded(),
        metrics: (v, track) => (track === 'stable' && (v === '1' || !replayedNewStable) ? (v === '1' ? healthy : idle) : healthy),
        onReplay: (target) => {
          if (target === 'ipv4:127.0.0.1:2001') replayedNewStable = true;
        },
      });
      const outcome = await w.rollouts.run(cand('e2', '2'), w.hooks);
      expect(outcome).toMatchObject({ outcome: 'promoted' });
      const bakeChecks = w.events.filter((e) => e.type === 'check' && e.phase === 'Baking').map((e) => e.verdict);
      expect(bakeChecks[0]).toBe('hold');
      expect(bakeChecks).toContain('pass');
      await w.rollouts.close();
    });
  });

  it('rejects a candidate that never becomes ready, with the stable untouched', async () => {
    const deployer = new FakeDeployer();
    deployer.failing.add('2');
    const w = world({ store: await seeded(), deployer });
    expect(await w.rollouts.run(cand('e2', '2'), w.hooks)).toMatchObject({ outcome: 'rejected', reasonCode: 'not_ready' });
    expect(w.verified).toEqual([]);
    expect((await w.store.get('m'))?.record.stable).toEqual(STABLE);
    await w.rollouts.close();
  });

  it('queues a newer candidate behind the running one', async () => {
    const w = world({ store: await seeded() });
    const [a, b] = await Promise.all([w.rollouts.run(cand('e2', '2'), w.hooks), w.rollouts.run(cand('e3', '3'), w.hooks)]);
    expect([a.outcome, b.outcome]).toEqual(['promoted', 'promoted']);
    const starts = w.events.filter((e) => e.type === 'phase' && e.phase === 'Verifying').map((e) => e.experiment_id);
    expect(starts).toEqual(['e2', 'e3']);
    const succeeded = w.events.findIndex((e) => e.phase === 'Succeeded');
    expect(w.events.findIndex((e) => e.experiment_id === 'e3')).toBeGreaterThan(succeeded);
    expect((await w.store.get('m'))?.record).toMatchObject({ stable: { version: '3' }, previous_stable: { version: '2' } });
    await w.rollouts.close();
  });

  it('a restarted promoter resumes the canary it finds in KV and never verifies twice', async () => {
    const store = await seeded();
    const first = world({ store, metrics: (v) => (v === '2' ? { ...healthy, requests: 0 } : healthy) });
    const running = first.rollouts.run(cand('e2', '2'), first.hooks).catch((e: unknown) => e);
    // Held in Canary (no traffic) — then the promoter "dies".
    while ((await store.get('m'))?.record.phase !== 'Canary') await new Promise((r) => setTimeout(r, 5));
    await first.rollouts.close();
    expect(await running).toMatchObject({ name: 'AbortError' });

    const second = world({ store, deployer: first.deployer });
    await second.rollouts.resumeAll();
    // The intake redelivers the same result: it joins the resumed rollout.
    expect(await second.rollouts.run(cand('e2', '2'), second.hooks)).toMatchObject({ outcome: 'promoted' });
    expect([...first.verified, ...second.verified]).toEqual(['e2']);
    expect(second.events.filter((e) => e.phase === 'Verifying')).toEqual([]);
    // Redelivered once more after success: the recorded outcome, nothing runs.
    const writes = store.writes;
    expect(await second.rollouts.run(cand('e2', '2'), second.hooks)).toMatchObject({ outcome: 'promoted' });
    expect(store.writes).toBe(writes);
    await second.rollouts.close();
  });

  it('manual rollback: during the canary, and after success back to the previous stable', async () => {
    const w = world({ store: await seeded(), metrics: (v) => (v === '2' ? { ...healthy, requests: 0 } : healthy) });
    const running = w.rollouts.run(cand('e2', '2'), w.hooks);
    while ((await w.store.get('m'))?.record.phase !== 'Canary') await new Promise((r) => setTimeout(r, 5));
    expect(await w.rollouts.requestRollback('m', 'looks wrong')).toMatchObject({ ok: true });
    expect(await running).toMatchObject({ outcome: 'rolled_back', reasonCode: 'manual_rollback', reason: 'manual rollback: looks wrong' });
    expect(w.deployer.tracks.canary).toBeNull();

    const w2 = world({ store: w.store, deployer: w.deployer });
    expect(await w2.rollouts.run(cand('e3', '3'), w2.hooks)).toMatchObject({ outcome: 'promoted' });
    expect(await w2.rollouts.requestRollback('m', 'customers complain')).toMatchObject({ ok: true });
    await w2.rollouts.controller('m').drive();
    expect((await w2.store.get('m'))?.record).toMatchObject({ phase: 'Failed', stable: STABLE, restore: null, reason: 'manual rollback: customers complain' });
    expect(w2.deployer.tracks.stable?.version).toBe('1');
    expect(await w2.rollouts.requestRollback('m', 'again')).toEqual({ ok: false, message: 'm: already rolled back' });
    await w.rollouts.close();
    await w2.rollouts.close();
  });

  it('two promoters on the same state: one rollout, compare-and-set keeps it consistent', async () => {
    const store = await seeded();
    const deployer = new FakeDeployer();
    const a = world({ store, deployer });
    const b = world({ store, deployer });
    const [ra, rb] = await Promise.all([a.rollouts.run(cand('e2', '2'), a.hooks), b.rollouts.run(cand('e2', '2'), b.hooks)]);
    expect([ra.outcome, rb.outcome]).toEqual(['promoted', 'promoted']);
    const phases = [...a.events, ...b.events].filter((e) => e.type === 'phase').map((e) => `${e.phase}@${e.weight}`);
    expect(phases.filter((p) => p.startsWith('Verifying'))).toHaveLength(1);
    expect(phases.filter((p) => p.startsWith('Succeeded'))).toHaveLength(1);
    await a.rollouts.close();
    await b.rollouts.close();
  });
  it('a canary whose latency histograms never tell is decided by the golden images replayed as pairs', async () => {
    // Few requests in wide buckets: the histograms' ratio interval straddles the limit every time.
    const wide = new Map([[0.025, 0], [0.05, 3], [0.1, 12], [0.25, 17], [0.5, 19], [1, 19], [Infinity, 19]]);
    const metrics = (version: string, track: Track): TrackMetrics => (track === 'stable' && version === '2' ? healthy : { ...healthy, requests: 19, latencyBuckets: wide });
    const w = world({ store: await seeded(), metrics, pairs: () => undefined });
    const outcome = await w.rollouts.run(cand('e2', '2'), w.hooks);
    expect(outcome).toMatchObject({ outcome: 'promoted' });
    const latency = w.events.filter((e) => e.type === 'check' && e.phase === 'Canary').map((e) => e.checks?.find((c) => c.check === 'latency_ratio'));
    // The first check held on the histograms and started the paired replay.
    expect(latency[0]).toMatchObject({ result: 'hold', detail: expect.stringMatching(/^p95 /) as string });
    // Every pass came from the pairs (10 a window here: a step's first check may hold for PAIRED_MIN).
    const passes = latency.filter((c) => c?.result === 'pass');
    expect(passes).toHaveLength(3);
    expect(passes.every((c) => c?.detail.startsWith('replayed pairs: '))).toBe(true);
    expect(latency.filter((c) => c?.result !== 'pass').every((c) => c?.result === 'hold')).toBe(true);
    expect(w.replays.some((r) => r.includes('+'))).toBe(true);
    await w.rollouts.close();
  });
});
