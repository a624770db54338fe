import { describe, expect, it } from 'vitest';
import type { TrackState } from '@segserve/proto';
import type { Analysis, Verdict } from './canary-analysis.js';
import type { Candidate, VerificationReport } from './ports.js';
import {
  analysisWindowSeconds,
  decide,
  desiredTracks,
  initialRecord,
  isSettled,
  observationsNeeded,
  outcomeOf,
  rollbackRefusal,
  startRollout,
  type Observation,
  type RolloutRecord,
  type RolloutSettings,
} from './rollout.js';

const SETTINGS: RolloutSettings = {
  canary: { steps: [10, 25, 50], intervalMs: 30_000, minRequests: 50, maxFailedChecks: 2, maxErrorRate: 0.01, maxLatencyRatio: 1.2, maxRssFraction: 0.9, bakeMs: 60_000, bakeExtensions: 2, onNoEvidence: 'fail', maxHolds: 10 },
  readyTimeoutMs: 120_000,
  pollMs: 1_000,
};
const T0 = new Date('2026-11-27T10:00:00.000Z');
const at = (ms: number): Date => new Date(T0.getTime() + ms);

const STABLE: TrackState = { version: '3', sha256: 'a'.repeat(64), target: 'ipv4:127.0.0.1:5001' };
const CANDIDATE: Candidate = { id: 'exp-4', ref: { model: 'facade-ads', version: '4', sha256: 'b'.repeat(64) }, claimed: { miou: 0.8 }, goldenSha256: 'c'.repeat(64) };
const VERIFIED: VerificationReport = { ok: true, reasonCode: 'verified', reason: 'reproduced and beats the stable', claimed: { miou: 0.8 }, measured: { miou: 0.8 }, stableMeasured: { miou: 0.78 } };
const READY = (port: number) => ({ state: 'ready', target: `ipv4:127.0.0.1:${port}` }) as const;
const analysis = (verdict: Verdict, needSamples: ('canary' | 'stable')[] = []): Analysis => ({ verdict, checks: [], reason: `${verdict}: figures`, needSamples, stableLatencyP95Seconds: 0.4, stableLatencyBuckets: [[0.5, 10], [null, 10]] });

function started(stable: TrackState | null = STABLE): RolloutRecord {
  const base = stable ? initialRecord('facade-ads', stable, T0) : null;
  const s = startRollout(base, CANDIDATE, T0);
  if (!s) throw new Error('not started');
  return s;
}

/** Drives the machine from Verifying into Canary step 0. */
function inCanary(): RolloutRecord {
  return decide(SETTINGS, started(), { canary: READY(6001), verification: VERIFIED }, at(5_000)).state;
}

function step(s: RolloutRecord, obs: Observation, ms: number) {
  return decide(SETTINGS, s, obs, at(ms));
}

describe('decide: one step at a time', () => {
  it('waits in Verifying while the canary starts, polling', () => {
    const s = started();
    const d = step(s, { canary: { state: 'progressing', detail: 'starting' } }, 1_000);
    expect(d.changed).toBe(false);
    expect(d.wakeAt).toEqual(at(2_000));
  });

  const verifyingRows: [string, Observation, number, Partial<RolloutRecord>][] = [
    ['canary never ready → rejected', { canary: { state: 'progressing', detail: 'starting' } }, 120_000, { phase: 'Failed', outcome: 'rejected', reason_code: 'not_ready' }],
    ['canary crash loop → rejected', { canary: { state: 'failed', reason: 'crash loop' } }, 1_000, { phase: 'Failed', outcome: 'rejected', reason_code: 'not_ready', canary: null }],
    ['verification rejects → rejected with its reason', { canary: READY(6001), verification: { ...VERIFIED, ok: false, reasonCode: 'claim_not_reproduced', reason: 'mIoU 0.70 measured, 0.80 claimed' } }, 1_000, { phase: 'Failed', outcome: 'rejected', reason_code: 'claim_not_reproduced', reason: 'mIoU 0.70 measured, 0.80 claimed' }],
    ['verified → canary at the first step', { canary: READY(6001), verification: VERIFIED }, 1_000, { phase: 'Canary', step: 0, canary: { version: '4', sha256: 'b'.repeat(64), target: 'ipv4:127.0.0.1:6001', weight: 10 }, failed_checks: 0 }],
  ];
  it.each(verifyingRows)('Verifying: %s', (_name, obs, ms, expected) => {
    const d = step(started(), obs, ms);
    expect(d.state).toMatchObject(expected);
    expect(d.state.stable).toEqual(STABLE);
    expect(d.events.map((e) => `${e.type}:${e.phase}`)).toEqual([`phase:${String(expected.phase)}`]);
  });

  it('Verifying: a first model (no stable) skips the canary', () => {
    const d = step(started(null), { canary: READY(6001), verification: VERIFIED }, 1_000);
    expect(d.state).toMatchObject({ phase: 'Promoting', canary: { weight: 0 } });
  });

  const canaryRows: [string, number, Observation, Partial<RolloutRecord>, ('canary' | 'stable')[]][] = [
    ['pass at step 0 → step 1 at 25%', 0, { canary: READY(6001), analysis: analysis('pass') }, { phase: 'Canary', step: 1, canary: expect.objectContaining({ weight: 25 }) as never, failed_checks: 0 }, []],
    ['pass at the last step → Promoting', 2, { canary: READY(6001), analysis: analysis('pass') }, { phase: 'Promoting', canary: expect.objectContaining({ weight: 50 }) as never }, []],
    ['hold keeps the step and replays', 1, { canary: READY(6001), analysis: analysis('hold', ['canary', 'stable']) }, { phase: 'Canary', step: 1, failed_checks: 0, last_verdict: 'hold' }, ['canary', 'stable']],
    ['one failed check keeps the step', 1, { canary: READY(6001), analysis: analysis('fail') }, { phase: 'Canary', step: 1, failed_checks: 1, last_verdict: 'fail' }, []],
    ['canary process gone → rolled back', 1, { canary: { state: 'failed', reason: 'crash loop' } }, { phase: 'Failed', outcome: 'rolled_back', reason_code: 'canary_failed', canary: null, restore: null }, []],
    ['canary restarted elsewhere → target follows', 1, { canary: READY(7001) }, { phase: 'Canary', step: 1, canary: expect.objectContaining({ target: 'ipv4:127.0.0.1:7001', weight: 25 }) as never }, []],
  ];
  it.each(canaryRows)('Canary: %s', (_name, stepIndex, obs, expected, replay) => {
    const s: RolloutRecord = { ...inCanary(), step: stepIndex, canary: { ...(inCanary().canary as NonNullable<RolloutRecord['canary']>), weight: SETTINGS.canary.steps[stepIndex] ?? 0 } };
    const d = step(s, obs, 40_000);
    expect(d.state).toMatchObject(expected);
    expect(d.replay).toEqual(replay);
    expect(d.state.stable).toEqual(STABLE);
  });

  it('Canary: the max_failed_checks-th failure rolls back, stable untouched', () => {
    const s: RolloutRecord = { ...inCanary(), failed_checks: 1 };
    const d = step(s, { canary: READY(6001), analysis: analysis('fail') }, 40_000);
    expect(d.state).toMatchObject({ phase: 'Failed', outcome: 'rolled_back', reason_code: 'canary_analysis_failed', canary: null, stable: STABLE, failed_checks: 2 });
    expect(d.state.reason).toMatch(/^2 failed checks \(max 2\); last: fail: figures$/);
    expect(d.events.map((e) => e.type)).toEqual(['check', 'phase']);
    expect(d.wakeAt).toBeNull();
    expect(isSettled(d.state)).toBe(true);
  });

  it('Canary: no check due → nothing changes, wakes at the check time', () => {
    const s = inCanary();
    const d = step(s, { canary: READY(6001) }, 10_000);
    expect(d.changed).toBe(false);
    expect(d.wakeAt).toEqual(at(35_000));
  });

  const promoting = (): RolloutRecord => ({ ...inCanary(), phase: 'Promoting', step: undefined, canary: { version: '4', sha256: 'b'.repeat(64), target: 'ipv4:127.0.0.1:6001', weight: 50 }, phase_started_at: at(100_000).toISOString() });

  it('Promoting: the promoted stable ready → Baking with the previous stable kept for rollback', () => {
    const d = step(promoting(), { stable: READY(6001) }, 101_000);
    expect(d.state).toMatchObject({ phase: 'Baking', stable: { version: '4', target: 'ipv4:127.0.0.1:6001' }, canary: null, previous_stable: STABLE, bake_until: at(161_000).toISOString() });
    expect(d.state.step).toBeUndefined();
  });

  it('Promoting: the promoted stable fails → Failed, restoring the current stable first', () => {
    const d = step(promoting(), { stable: { state: 'failed', reason: 'ProgressDeadlineExceeded' } }, 101_000);
    expect(d.state).toMatchObject({ phase: 'Failed', outcome: 'rolled_back', reason_code: 'promotion_failed', restore: STABLE, stable: STABLE });
    expect(desiredTracks(d.state)).toEqual({ stable: { model: 'facade-ads', version: '3', sha256: STABLE.sha256 }, canary: null });
    expect(isSettled(d.state)).toBe(false);
  });

  const baking = (): RolloutRecord => step(promoting(), { stable: READY(6001) }, 101_000).state;

  it('Baking: a regression up to max_failed_checks rolls back to the previous stable', () => {
    const once = step(baking(), { stable: READY(6001), analysis: analysis('fail') }, 131_000).state;
    expect(once).toMatchObject({ phase: 'Baking', failed_checks: 1 });
    const twice = step(once, { stable: READY(6001), analysis: analysis('fail') }, 161_000 - 1).state;
    expect(twice).toMatchObject({ phase: 'Failed', reason_code: 'bake_regression', restore: STABLE, previous_stable: null, stable: { version: '4' } });
  });

  it('Baking: the bake period over without regression → Succeeded', () => {
    const d = step(baking(), { stable: READY(6001), analysis: analysis('pass') }, 161_000);
    expect(d.state).toMatchObject({ phase: 'Succeeded', outcome: 'promoted', stable: { version: '4' }, previous_stable: STABLE, bake_passes: 1 });
    expect(outcomeOf(d.state)).toEqual({ outcome: 'promoted', reason: '4 promoted and baked (1 passing check during the bake)' });
  });

  const hold = (): Analysis => ({ ...analysis('hold', ['stable']), checks: [{ check: 'requests', result: 'hold', value: 0, threshold: 50, detail: 'the new stable served 0 requests (fewer than 50)' }], reason: 'hold: the new stable served 0 requests (fewer than 50)' });

  it('Baking: no live traffic — holds replay the golden set through the new stable; no passing check → extended, then Failed with no_evidence', () => {
    let s = baking(); // bake_until +161 s, checks every 30 s
    const trail: string[] = [];
    let replays: string[] = [];
    for (const ms of [131_000, 161_000, 191_000, 221_000, 251_000, 281_000]) {
      const d = step(s, { stable: READY(6001), analysis: hold() }, ms);
      replays = [...replays, ...d.replay];
      s = d.state;
      trail.push(`${s.phase}:${s.bake_extensions ?? 0}:${d.events.map((e) => e.type).join('+')}`);
    }
    expect(trail).toEqual(['Baking:0:check', 'Baking:1:check+bake_extended', 'Baking:1:check', 'Baking:2:check+bake_extended', 'Baking:2:check', 'Failed:2:check+phase']);
    expect(replays).toEqual(['stable', 'stable', 'stable', 'stable', 'stable', 'stable']);
    expect(s).toMatchObject({ phase: 'Failed', outcome: 'rolled_back', reason_code: 'no_evidence', restore: STABLE, previous_stable: null });
    expect(s.reason).toBe('no passing check during the bake and 2 extensions; last: hold: the new stable served 0 requests (fewer than 50)');
    expect(desiredTracks(s).stable?.version).toBe('3');
  });

  it('Baking: on_no_evidence succeed → Succeeded with the reason recorded', () => {
    const settings: RolloutSettings = { ...SETTINGS, canary: { ...SETTINGS.canary, bakeExtensions: 0, onNoEvidence: 'succeed' } };
    const d = decide(settings, baking(), { stable: READY(6001), analysis: hold() }, at(161_000));
    expect(d.state).toMatchObject({ phase: 'Succeeded', outcome: 'promoted', reason_code: 'no_evidence', stable: { version: '4' } });
    expect(d.state.reason).toMatch(/^4 promoted without evidence: no passing check during the bake and 0 extensions; last: hold: the new stable served 0 requests .*\(the policy says on_no_evidence: succeed\)$/);
  });

  it('Baking: a hold, then a pass in the extension → Succeeded', () => {
    const held = step(baking(), { stable: READY(6001), analysis: hold() }, 161_000).state;
    expect(held).toMatchObject({ phase: 'Baking', bake_extensions: 1 });
    const d = step(held, { stable: READY(6001), analysis: analysis('pass') }, 191_000);
    expect(d.state).toMatchObject({ phase: 'Baking', bake_passes: 1 });
    expect(step(d.state, { stable: READY(6001) }, 221_000).state).toMatchObject({ phase: 'Succeeded', outcome: 'promoted', reason_code: 'promoted' });
  });

  it('Baking: the bake\'s end is a check of its own: a check that falls due just after it is judged first, not after an extension', () => {
    const s = step(baking(), { stable: READY(6001), analysis: hold() }, 131_500).state; // next check at +161.5 s, bake until +161 s
    expect(observationsNeeded(s, at(161_000))).toMatchObject({ analysis: 'bake' });
    const d = step(s, { stable: READY(6001), analysis: analysis('pass') }, 161_000);
    expect(d.state).toMatchObject({ phase: 'Succeeded', bake_extensions: 0, bake_passes: 1 });
    expect(observationsNeeded(s, at(160_999))).toMatchObject({ analysis: null });
  });

  it('Canary: max_holds checks in a row that hold → Failed with no_evidence; a decisive check resets the count', () => {
    let s = inCanary();
    s = step(s, { canary: READY(6001), analysis: analysis('hold', ['canary', 'stable']) }, 35_000).state;
    s = step(s, { canary: READY(6001), analysis: analysis('fail') }, 65_000).state;
    expect(s.holds).toBe(0);
    for (let i = 0; i < 9; i++) s = step(s, { canary: READY(6001), analysis: analysis('hold', ['canary', 'stable']) }, 95_000 + i * 30_000).state;
    expect(s).toMatchObject({ phase: 'Canary', holds: 9 });
    s = step(s, { canary: READY(6001), analysis: analysis('hold', ['canary', 'stable']) }, 400_000).state;
    expect(s).toMatchObject({ phase: 'Failed', outcome: 'rolled_back', reason_code: 'no_evidence', canary: null, stable: STABLE });
    expect(s.reason).toBe('no decisive check at 10%: 10 checks in a row held (max_holds 10); last: hold: figures');
  });

  it('Failed: the restored stable ready → routed to again, settled', () => {
    const failed = step(promoting(), { stable: { state: 'failed', reason: 'x' } }, 101_000).state;
    const waiting = step(failed, { stable: { state: 'progressing', detail: 'starting' } }, 102_000);
    expect(waiting.changed).toBe(false);
    const d = step(failed, { stable: READY(5002) }, 103_000);
    expect(d.state).toMatchObject({ phase: 'Failed', restore: null, stable: { version: '3', target: 'ipv4:127.0.0.1:5002' } });
    expect(d.events.map((e) => e.type)).toEqual(['restored']);
    expect(outcomeOf(d.state)).toMatchObject({ outcome: 'rolled_back', reasonCode: 'promotion_failed' });
  });
});

describe('golden replay with the window (no live traffic)', () => {
  // Each row: the checks a rollout sees from Verifying on, and the tracks replayed after each
  // tick ('' = none). Once a check held for samples, every later window — the next check's, a
  // new step's, the bake's, an extension's — starts with the replay, through the phase's tracks.
  type Tick = [Observation, number];
  const c = (a: Analysis): Observation => ({ canary: READY(6001), analysis: a });
  const rows: [string, Tick[], string[]][] = [
    ['live traffic enough: never replayed', [[c(analysis('pass')), 35_000], [c(analysis('pass')), 65_000], [c(analysis('pass')), 95_000], [{ stable: READY(6001) }, 96_000], [{ stable: READY(6001), analysis: analysis('pass') }, 126_000]], ['', '', 'Promoting:', 'Baking:', 'Baking:']],
    ['first window empty: replayed from then on, each step and the bake start with it', [[c(analysis('hold', ['canary', 'stable'])), 35_000], [c(analysis('pass')), 65_000], [c(analysis('pass')), 95_000], [c(analysis('pass')), 125_000], [{ stable: READY(6001) }, 126_000], [{ stable: READY(6001), analysis: analysis('pass') }, 156_000]], ['Canary@10:canary+stable', 'Canary@25:canary+stable', 'Canary@50:canary+stable', 'Promoting:', 'Baking:stable', 'Baking:stable']],
    ['only the stable lacked samples: only the stable replayed', [[c(analysis('hold', ['stable'])), 35_000], [c(analysis('pass')), 65_000]], ['Canary@10:stable', 'Canary@25:stable']],
    ['the bake alone lacked samples: replayed through the new stable, extension included', [[c(analysis('pass')), 35_000], [c(analysis('pass')), 65_000], [c(analysis('pass')), 95_000], [{ stable: READY(6001) }, 96_000], [{ stable: READY(6001), analysis: analysis('hold', ['stable']) }, 126_000], [{ stable: READY(6001), analysis: analysis('hold', ['stable']) }, 156_000]], ['', '', 'Promoting:', 'Baking:', 'Baking:stable', 'Baking:stable']],
  ];
  it.each(rows)('%s', (_name, ticks, want) => {
    let s = inCanary();
    const got: string[] = [];
    for (const [obs, ms] of ticks) {
      const d = step(s, obs, ms);
      s = JSON.parse(JSON.stringify(d.state)) as RolloutRecord;
      got.push(s.phase === 'Canary' && !d.replay.length && !s.replay_tracks ? '' : `${s.phase}${s.phase === 'Canary' ? `@${s.canary?.weight}` : ''}:${d.replay.join('+')}`);
    }
    expect(got).toEqual(want);
  });

  it('a new rollout starts without the replay of the last one', () => {
    const held = step(inCanary(), c(analysis('hold', ['canary', 'stable'])), 35_000).state;
    expect(held.replay_tracks).toEqual(['canary', 'stable']);
    const failed = step(held, { canary: { state: 'failed', reason: 'x' } }, 36_000).state;
    expect(startRollout(failed, { ...CANDIDATE, id: 'exp-5' }, at(40_000))?.replay_tracks).toBeUndefined();
  });
});

describe('analysis window', () => {
  it('spans one interval after a decisive check, grows while checks hold, and is capped', () => {
    let s = inCanary(); // step 0 entered at +5 s
    expect(analysisWindowSeconds(SETTINGS, s, at(35_000))).toBe(30);
    s = step(s, { canary: READY(6001), analysis: analysis('hold') }, 35_000).state;
    expect(analysisWindowSeconds(SETTINGS, s, at(65_000))).toBe(60);
    s = step(s, { canary: READY(6001), analysis: analysis('fail') }, 65_000).state;
    expect(analysisWindowSeconds(SETTINGS, s, at(95_000))).toBe(30);
    expect(analysisWindowSeconds(SETTINGS, { ...s, window_start: T0.toISOString() }, at(3_600_000))).toBe(300);
    // A new step starts a new window.
    s = step(s, { canary: READY(6001), analysis: analysis('pass') }, 95_000).state;
    expect(s.window_start).toBe(at(95_000).toISOString());
  });
});

describe('stable target', () => {
  it('follows a stable that was started again elsewhere, in any phase, and waits while it starts', () => {
    const idle = initialRecord('facade-ads', STABLE, T0);
    const starting = step(idle, { stable: { state: 'progressing', detail: 'starting' } }, 1_000);
    expect(starting).toMatchObject({ changed: false, wakeAt: at(2_000) });
    const moved = step(idle, { stable: READY(5009) }, 2_000);
    expect(moved.state.stable).toEqual({ ...STABLE, target: 'ipv4:127.0.0.1:5009' });
    expect(moved.events.map((e) => e.type)).toEqual(['target']);
    expect(moved.wakeAt).toBeNull();
    const canary = step(inCanary(), { canary: READY(6001), stable: READY(5009) }, 10_000);
    expect(canary.state).toMatchObject({ phase: 'Canary', stable: { target: 'ipv4:127.0.0.1:5009' } });
  });

  it('is not confused by the candidate starting on the stable track while Promoting', () => {
    const s: RolloutRecord = { ...inCanary(), phase: 'Promoting', phase_started_at: at(100_000).toISOString() };
    const d = step(s, { stable: { state: 'progressing', detail: 'rolling' } }, 101_000);
    expect(d.changed).toBe(false);
  });
});

describe('manual rollback', () => {
  const request = (s: RolloutRecord): RolloutRecord => ({ ...s, rollback_requested: { reason: 'bad masks', at: T0.toISOString() } });
  const succeeded = (): RolloutRecord => ({ ...initialRecord('facade-ads', { ...STABLE, version: '4' }, T0), phase: 'Succeeded', previous_stable: STABLE, outcome: 'promoted', experiment_id: 'exp-4' });
  const rows: [string, () => RolloutRecord, Partial<RolloutRecord> | 'refused'][] = [
    ['during Verifying: canary removed', () => started(), { phase: 'Failed', canary: null, restore: null, reason_code: 'manual_rollback', stable: STABLE }],
    ['during Canary: canary removed, stable untouched', () => inCanary(), { phase: 'Failed', canary: null, restore: null, stable: STABLE, reason: 'manual rollback: bad masks' }],
    ['after success: previous stable restored', succeeded, { phase: 'Failed', restore: STABLE, previous_stable: null, outcome: 'rolled_back' }],
    ['after success of a first model: refused', () => ({ ...succeeded(), previous_stable: null }), 'refused'],
    ['after a rollback: refused', () => ({ ...succeeded(), phase: 'Failed', previous_stable: null }), 'refused'],
    ['with nothing ever rolled out: refused', () => initialRecord('facade-ads', STABLE, T0), 'refused'],
  ];
  it.each(rows)('%s', (_name, make, expected) => {
    const before = make();
    const d = step(request(before), {}, 1_000);
    expect(d.state.rollback_requested).toBeNull();
    if (expected === 'refused') {
      expect(rollbackRefusal(before)).toBeDefined();
      expect(d.state.phase).toBe(before.phase);
      expect(d.events.map((e) => e.type)).toEqual(['rollback_refused']);
    } else {
      expect(rollbackRefusal(before)).toBeUndefined();
      expect(d.state).toMatchObject(expected);
    }
  });

  it('during the bake: restores the previous stable, which keeps serving until it is ready', () => {
    const s = { ...inCanary(), phase: 'Baking' as const, stable: { ...STABLE, version: '4', target: 'ipv4:127.0.0.1:6001' }, previous_stable: STABLE, canary: null };
    const d = step(request(s), { stable: READY(6001) }, 1_000);
    expect(d.state).toMatchObject({ phase: 'Failed', restore: STABLE, stable: { version: '4' } });
    expect(desiredTracks(d.state).stable?.version).toBe('3');
  });
});

describe('startRollout', () => {
  it('starts from nothing, resumes the same experiment, queues behind another, follows a settled one', () => {
    const first = started();
    expect(first).toMatchObject({ phase: 'Verifying', experiment_id: 'exp-4', stable: STABLE, canary: null, candidate: { version: '4' } });
    expect(startRollout(first, CANDIDATE, at(1))).toBe(first);
    expect(startRollout(first, { ...CANDIDATE, id: 'exp-5' }, at(1))).toBeUndefined();
    const failed = step(first, { canary: { state: 'failed', reason: 'x' } }, 1).state;
    expect(startRollout(failed, { ...CANDIDATE, id: 'exp-5' }, at(2))).toMatchObject({ phase: 'Verifying', experiment_id: 'exp-5', stable: STABLE });
  });
});

describe('observationsNeeded', () => {
  it('asks for a check only when it is due', () => {
    const s = inCanary();
    expect(observationsNeeded(s, at(10_000))).toMatchObject({ canary: true, analysis: null });
    expect(observationsNeeded(s, at(35_000))).toMatchObject({ canary: true, analysis: 'canary' });
    expect(observationsNeeded(started(), T0)).toMatchObject({ canary: true, verifyWhenReady: true });
  });
});

describe("the bake's latency baseline: the stable over every passing canary window", () => {
  type Window = readonly [Verdict, number | null, readonly (readonly [number | null, number])[] | null];
  const FAST = [[0.25, 40], [0.5, 50], [null, 50]] as const;
  const SLOW = [[0.25, 0], [0.5, 5], [null, 50]] as const;
  const rows: [string, readonly Window[], number | null, unknown][] = [
    // A quiet last window does not become the baseline alone: 100 requests, 55 of them ≤ 0.5 s.
    ['busy, busy, quiet: added up', [['pass', 0.5, SLOW], ['pass', 0.5, SLOW], ['pass', 0.3, FAST]], 0.5, [[0.25, 40], [0.5, 60], [null, 150]]],
    ['a held window is not added (the next window includes it)', [['pass', 0.3, FAST], ['hold', 0.5, SLOW], ['pass', 0.5, SLOW], ['pass', 0.3, FAST]], 0.5, [[0.25, 80], [0.5, 105], [null, 150]]],
    ['without histograms: the last passing window\'s p95', [['pass', 0.3, null], ['pass', 0.6, null], ['pass', 0.45, null]], 0.45, null],
  ];
  it.each(rows)('%s', (_name, windows, p95, buckets) => {
    let s = inCanary();
    let ms = 5_000;
    for (const [verdict, stableP95, stableBuckets] of windows) {
      ms += 30_000;
      s = step(s, { canary: READY(6001), analysis: { verdict, checks: [], reason: verdict, needSamples: verdict === 'hold' ? ['canary', 'stable'] : [], stableLatencyP95Seconds: stableP95, stableLatencyBuckets: stableBuckets } }, ms).state;
    }
    s = step(s, { stable: READY(6001) }, ms + 1_000).state;
    expect(s.phase).toBe('Baking');
    expect(s.baseline_latency_buckets ?? null).toEqual(buckets);
    expect(s.baseline_p95_seconds).toBeCloseTo(p95 as number, 9);
  });
});

describe('scenarios (tick, tick, assert phase)', () => {
  it('a good candidate: verified, 10 → 25 → 50 %, promoted, baked, Succeeded', () => {
    let s = started();
    const trail: string[] = [];
    const tick = (obs: Observation, ms: number): void => {
      const d = step(s, obs, ms);
      s = JSON.parse(JSON.stringify(d.state)) as RolloutRecord; // through KV and back
      trail.push(`${s.phase}${s.phase === 'Canary' ? `@${s.canary?.weight}` : ''}`);
    };
    tick({ canary: { state: 'progressing', detail: '' } }, 1_000);
    tick({ canary: READY(6001), verification: VERIFIED }, 5_000);
    tick({ canary: READY(6001), analysis: analysis('hold', ['canary']) }, 35_000);
    tick({ canary: READY(6001), analysis: analysis('pass') }, 65_000);
    tick({ canary: READY(6001), analysis: analysis('pass') }, 95_000);
    tick({ canary: READY(6001), analysis: analysis('pass') }, 125_000);
    tick({ stable: { state: 'progressing', detail: '' } }, 126_000);
    tick({ stable: READY(6001) }, 127_000);
    tick({ stable: READY(6001), analysis: analysis('pass') }, 157_000);
    tick({ stable: READY(6001), analysis: analysis('hold', ['stable']) }, 187_000);
    expect(trail).toEqual(['Verifying', 'Canary@10', 'Canary@10', 'Canary@25', 'Canary@50', 'Promoting', 'Promoting', 'Baking', 'Baking', 'Succeeded']);
    expect(isSettled(s)).toBe(true);
    expect(s).toMatchObject({ stable: { version: '4', target: 'ipv4:127.0.0.1:6001' }, previous_stable: STABLE, canary: null, baseline_p95_seconds: 0.475, baseline_latency_buckets: [[0.5, 30], [null, 30]] });
  });

  it('a candidate that misbehaves live: rolled back after max_failed_checks, stable untouched', () => {
    let s = inCanary();
    const phases: string[] = [];
    for (const [verdict, ms] of [['pass', 35_000], ['fail', 65_000], ['hold', 95_000], ['fail', 125_000]] as const) {
      s = step(s, { canary: READY(6001), analysis: analysis(verdict) }, ms).state;
      phases.push(`${s.phase}:${s.failed_checks}`);
    }
    expect(phases).toEqual(['Canary:0', 'Canary:1', 'Canary:1', 'Failed:2']);
    expect(s.stable).toEqual(STABLE);
    expect(desiredTracks(s)).toEqual({ stable: { model: 'facade-ads', version: '3', sha256: STABLE.sha256 }, canary: null });
    expect(outcomeOf(s)).toMatchObject({ outcome: 'rolled_back', reasonCode: 'canary_analysis_failed' });
  });
});
