// The rollout state machine (docs/architecture.md#rollout-state-machine) as a pure function — "decide purely, act at
// the edge". The controller reads the state from KV, makes the infrastructure match
// `desiredTracks(state)`, gathers what `observationsNeeded` asks for, calls `decide`, writes the
// result with compare-and-set, publishes the events and sleeps until `wakeAt`.
//
//   Idle → Verifying → Canary(step 0…n-1) → Promoting → Baking → Succeeded
//                 ╰──────────────┴──────────────┴───────────┴──→ Failed (reason)
//
// No success without evidence: a canary step moves on only on a passing check, and gives up
// with `no_evidence` after `max_holds` held checks in a row; a bake ends Succeeded only after a
// passing check — without one it is extended (`bake_extensions` times), then ends with
// `no_evidence`: Failed (the previous stable restored) or, where the policy says
// `on_no_evidence: succeed`, Succeeded with that reason recorded.
//
// Every phase is re-entrant: the infrastructure of a phase is a function of the state, so a
// restarted promoter converges to it and carries on (docs/reliability.md item 35). A rollback that must put
// a previous version back first records it in `restore`; the state keeps routing to what runs
// until the restored version is ready, so a rollback never routes to nothing.
import type { ReasonCode, RolloutPhase, TrackState } from '@segserve/proto';
import { addBucketPairs, fromBucketPairs, type Analysis } from './canary-analysis.js';
import { histogramQuantile } from './ratio.js';
import { desiredTracks, isSettled, rollbackRefusal, type Decision, type Observation, type RolloutEvent, type RolloutEventType, type RolloutRecord, type RolloutSettings } from './rollout-record.js';

export * from './rollout-record.js';

/** The stable track runs `state.stable` and answers at another target: route there. */
function refreshStableTarget(d: Draft, obs: Observation, now: Date): void {
  const s = d.state;
  const want = desiredTracks(s).stable;
  if (s.restore || !s.stable || !want || want.version !== s.stable.version || want.sha256 !== s.stable.sha256) return;
  if (obs.stable?.state !== 'ready' || obs.stable.target === s.stable.target) return;
  d.state = { ...s, stable: { ...s.stable, target: obs.stable.target } };
  d.events.push(event(d.state, 'target', now.toISOString(), { reason: `stable ${s.stable.version} now at ${obs.stable.target}` }));
}

// ---------------------------------------------------------------------------------------------

interface Draft {
  state: RolloutRecord;
  events: RolloutEvent[];
  replay: ('canary' | 'stable')[];
  wakeAt: Date | null;
}

function event(s: RolloutRecord, type: RolloutEventType, at: string, extra: Partial<RolloutEvent> = {}): RolloutEvent {
  return {
    type,
    model: s.model,
    experiment_id: s.experiment_id ?? null,
    version: s.candidate?.version ?? null,
    phase: s.phase,
    step: s.phase === 'Canary' ? (s.step ?? 0) : null,
    weight: s.canary?.weight ?? 0,
    at,
    ...extra,
  };
}

function addMs(now: Date, ms: number): Date {
  return new Date(now.getTime() + ms);
}

/** Moves to `phase` (a new step counts as entering Canary again), recording the event. */
function enter(d: Draft, phase: RolloutPhase, now: Date, patch: Partial<RolloutRecord>, reason: string): void {
  const at = now.toISOString();
  const next: Record<string, unknown> = { ...d.state, ...patch, phase, phase_started_at: at, reason };
  if (phase !== 'Canary') delete next['step'];
  d.state = next as RolloutRecord;
  d.events.push(event(d.state, 'phase', at, { reason, ...(patch.reason_code ? { reason_code: patch.reason_code } : {}) }));
}

/** Ends the rollout in Failed; `restore` is the version to bring back first, if any. */
function fail(d: Draft, now: Date, outcome: 'rejected' | 'rolled_back', code: ReasonCode, reason: string, restore: TrackState | null, extra: Partial<RolloutRecord> = {}): void {
  enter(d, 'Failed', now, { canary: null, restore, rollback_requested: null, outcome, reason_code: code, ...extra }, reason);
  d.wakeAt = restore ? now : null;
}

function readinessTimedOut(settings: RolloutSettings, s: RolloutRecord, now: Date): boolean {
  return s.phase_started_at !== undefined && now.getTime() - Date.parse(s.phase_started_at) >= settings.readyTimeoutMs;
}

function recordChecks(d: Draft, a: Analysis, now: Date, failedChecks: number): void {
  const at = now.toISOString();
  const holds = a.verdict === 'hold' ? (d.state.holds ?? 0) + 1 : 0;
  d.state = { ...d.state, last_checks: a.checks, last_verdict: a.verdict, last_check_at: at, failed_checks: failedChecks, holds, ...(a.verdict === 'hold' ? {} : { window_start: at }) };
  d.events.push(event(d.state, 'check', at, { verdict: a.verdict, checks: a.checks, reason: a.reason, failed_checks: failedChecks }));
  if (a.verdict === 'hold') {
    d.replay.push(...a.needSamples);
    const sticky = [...new Set([...(d.state.replay_tracks ?? []), ...a.needSamples])];
    if (sticky.length > (d.state.replay_tracks?.length ?? 0)) d.state = { ...d.state, replay_tracks: sticky };
  }
}

/**
 * The bake's latency baseline after a passing canary window: the stable's histogram over every
 * passing window of the canary so far (added up), and its p95 — not the last window alone, which
 * on a shared machine can be an unusually quiet or busy moment (docs/benchmarks.md, "Promotion
 * decisions with both cores burned"). Without histograms, the last window's p95.
 */
function bakeBaseline(s: RolloutRecord, a: Analysis): Pick<RolloutRecord, 'baseline_p95_seconds' | 'baseline_latency_buckets'> {
  const buckets = addBucketPairs(s.baseline_latency_buckets, a.stableLatencyBuckets);
  const merged = fromBucketPairs(buckets);
  return { baseline_p95_seconds: (merged ? histogramQuantile(0.95, merged) : null) ?? a.stableLatencyP95Seconds, baseline_latency_buckets: buckets };
}

/**
 * A new metrics window starts (a check was recorded, a canary step or the bake began, the bake
 * was extended): once this rollout needed the golden replay, it runs with every window, through
 * the tracks that exist in the phase (the bake has only the stable).
 */
function replayWithWindow(d: Draft): void {
  const s = d.state;
  if (s.phase !== 'Canary' && s.phase !== 'Baking') return;
  if (!d.events.some((e) => e.type === 'check' || e.type === 'bake_extended' || (e.type === 'phase' && e.phase === s.phase))) return;
  d.replay.push(...(s.replay_tracks ?? []).filter((t) => s.phase === 'Canary' || t === 'stable'));
}

/** The manual rollback request in the state, if any: handled first in every phase. */
function manualRollback(d: Draft, now: Date): boolean {
  const req = d.state.rollback_requested;
  if (!req) return false;
  const s = d.state;
  const reason = `manual rollback: ${req.reason}`;
  const refusal = rollbackRefusal({ ...s, rollback_requested: null });
  if (refusal) {
    d.state = { ...s, rollback_requested: null };
    d.events.push(event(d.state, 'rollback_refused', now.toISOString(), { reason: refusal }));
    return false;
  }
  switch (s.phase) {
    case 'Verifying':
    case 'Canary':
      fail(d, now, 'rolled_back', 'manual_rollback', reason, null);
      return true;
    case 'Promoting':
      // The stable track may already run the candidate: put the current stable back.
      fail(d, now, 'rolled_back', 'manual_rollback', reason, s.stable ?? null);
      return true;
    case 'Failed':
      d.state = { ...s, rollback_requested: null };
      return false;
    default:
      fail(d, now, 'rolled_back', 'manual_rollback', reason, s.previous_stable ?? null, { previous_stable: null });
      return true;
  }
}

/** One step of the state machine. Pure: same inputs, same decision. */
export function decide(settings: RolloutSettings, state: RolloutRecord, obs: Observation, now: Date): Decision {
  const d: Draft = { state, events: [], replay: [], wakeAt: null };
  const policy = settings.canary;
  const poll = addMs(now, settings.pollMs);
  if (!manualRollback(d, now)) {
    refreshStableTarget(d, obs, now);
    const s = d.state;
    const at = now.toISOString();
    switch (s.phase) {
      case 'Verifying': {
        const r = obs.canary;
        if (r?.state === 'failed') fail(d, now, 'rejected', 'not_ready', `the candidate never became ready: ${r.reason}`, null);
        else if (!r || r.state === 'progressing' || !obs.verification) {
          if (readinessTimedOut(settings, s, now)) fail(d, now, 'rejected', 'not_ready', `the candidate was not ready after ${settings.readyTimeoutMs / 1000} s${r?.state === 'progressing' ? ` (${r.detail})` : ''}`, null);
          else d.wakeAt = poll;
        } else if (!obs.verification.ok) {
          fail(d, now, 'rejected', obs.verification.reasonCode, obs.verification.reason, null, { verification: obs.verification });
        } else if (r.state === 'ready' && !s.stable) {
          // A first model has no stable to compare a canary with: limits and verification decide.
          enter(d, 'Promoting', now, { canary: { version: s.candidate?.version ?? '', sha256: s.candidate?.sha256 ?? '', target: r.target, weight: 0 }, verification: obs.verification }, 'first version of the model: verified, no stable to compare a canary with');
          d.wakeAt = now;
        } else if (r.state === 'ready') {
          const weight = policy.steps[0] ?? 100;
          enter(d, 'Canary', now, { step: 0, canary: { version: s.candidate?.version ?? '', sha256: s.candidate?.sha256 ?? '', target: r.target, weight }, next_check_at: addMs(now, policy.intervalMs).toISOString(), window_start: at, failed_checks: 0, verification: obs.verification }, `verified; canary at ${weight}%`);
          d.wakeAt = addMs(now, policy.intervalMs);
        }
        break;
      }
      case 'Canary': {
        const r = obs.canary;
        const canary = s.canary;
        if (!canary) {
          fail(d, now, 'rolled_back', 'inconsistent_state', 'canary phase without a canary track', null);
          break;
        }
        if (r?.state === 'failed') {
          fail(d, now, 'rolled_back', 'canary_failed', `the canary stopped serving: ${r.reason}`, null);
          break;
        }
        if (r?.state === 'ready' && r.target !== canary.target) {
          d.state = { ...s, canary: { ...canary, target: r.target } };
          d.events.push(event(d.state, 'target', at, { reason: `canary now at ${r.target}` }));
        }
        const a = obs.analysis;
        if (!a) {
          d.wakeAt = s.next_check_at ? new Date(s.next_check_at) : poll;
          break;
        }
        const failed = (s.failed_checks ?? 0) + (a.verdict === 'fail' ? 1 : 0);
        recordChecks(d, a, now, failed);
        const next = addMs(now, policy.intervalMs);
        d.state = { ...d.state, next_check_at: next.toISOString() };
        d.wakeAt = next;
        if (a.verdict === 'fail' && failed >= policy.maxFailedChecks) {
          fail(d, now, 'rolled_back', 'canary_analysis_failed', `${failed} failed checks (max ${policy.maxFailedChecks}); last: ${a.reason}`, null);
        } else if (a.verdict === 'hold' && (d.state.holds ?? 0) >= policy.maxHolds) {
          fail(d, now, 'rolled_back', 'no_evidence', `no decisive check at ${canary.weight}%: ${d.state.holds ?? 0} checks in a row held (max_holds ${policy.maxHolds}); last: ${a.reason}`, null);
        } else if (a.verdict === 'pass') {
          const step = (s.step ?? 0) + 1;
          if (a.stableLatencyP95Seconds !== null) d.state = { ...d.state, ...bakeBaseline(d.state, a) };
          const weight = policy.steps[step];
          if (weight !== undefined) {
            enter(d, 'Canary', now, { step, canary: { ...(d.state.canary ?? canary), weight }, window_start: at, holds: 0 }, `check passed; canary at ${weight}%`);
          } else {
            enter(d, 'Promoting', now, {}, `all ${policy.steps.length} canary steps passed`);
            d.wakeAt = now;
          }
        }
        break;
      }
      case 'Promoting': {
        const r = obs.stable;
        const cand = s.candidate;
        if (r?.state === 'failed' || (r?.state !== 'ready' && readinessTimedOut(settings, s, now))) {
          fail(d, now, 'rolled_back', 'promotion_failed', `the promoted version did not become ready: ${r?.state === 'failed' ? r.reason : 'timeout'}`, s.stable ?? null);
        } else if (r?.state === 'ready' && cand) {
          const promoted: TrackState = { version: cand.version, sha256: cand.sha256, target: r.target };
          const next = addMs(now, policy.intervalMs);
          enter(d, 'Baking', now, { stable: promoted, canary: null, previous_stable: s.stable ?? null, failed_checks: 0, holds: 0, bake_passes: 0, bake_extensions: 0, next_check_at: next.toISOString(), window_start: at, bake_until: addMs(now, policy.bakeMs).toISOString() }, `promoted ${cand.version}; baking for ${policy.bakeMs / 1000} s`);
          d.wakeAt = new Date(Math.min(next.getTime(), now.getTime() + policy.bakeMs));
        } else d.wakeAt = poll;
        break;
      }
      case 'Baking': {
        const r = obs.stable;
        const restore = s.previous_stable ?? null;
        if (r?.state === 'failed') {
          fail(d, now, 'rolled_back', 'bake_regression', `the promoted version stopped serving: ${r.reason}`, restore, { previous_stable: null });
          break;
        }
        const a = obs.analysis;
        let failed = s.failed_checks ?? 0;
        if (a) {
          failed += a.verdict === 'fail' ? 1 : 0;
          recordChecks(d, a, now, failed);
          d.state = { ...d.state, next_check_at: addMs(now, policy.intervalMs).toISOString(), ...(a.verdict === 'pass' ? { bake_passes: (s.bake_passes ?? 0) + 1 } : {}) };
        }
        const passes = d.state.bake_passes ?? 0;
        const extensions = d.state.bake_extensions ?? 0;
        const version = s.stable?.version ?? '?';
        if (a?.verdict === 'fail' && failed >= policy.maxFailedChecks) {
          fail(d, now, 'rolled_back', 'bake_regression', `${failed} failed checks during the bake (max ${policy.maxFailedChecks}); last: ${a.reason}`, restore, { previous_stable: null });
        } else if (s.bake_until !== undefined && now.getTime() >= Date.parse(s.bake_until)) {
          const last = d.state.last_checks?.length ? `; last: ${d.state.last_verdict ?? '?'}: ${(d.state.last_checks ?? []).filter((c) => c.result === d.state.last_verdict).map((c) => c.detail).join('; ')}` : '; no check ran';
          if (passes > 0) {
            enter(d, 'Succeeded', now, { outcome: 'promoted', reason_code: 'promoted' }, `${version} promoted and baked (${passes} passing check${passes === 1 ? '' : 's'} during the bake)`);
            d.wakeAt = null;
          } else if (extensions < policy.bakeExtensions) {
            const until = addMs(now, policy.bakeMs);
            d.state = { ...d.state, bake_until: until.toISOString(), bake_extensions: extensions + 1 };
            d.events.push(event(d.state, 'bake_extended', at, { reason: `no passing check during the bake yet${last}; baking ${policy.bakeMs / 1000} s more (extension ${extensions + 1} of ${policy.bakeExtensions})` }));
            d.wakeAt = new Date(Math.min(Date.parse(d.state.next_check_at ?? until.toISOString()), until.getTime()));
          } else if (policy.onNoEvidence === 'succeed') {
            enter(d, 'Succeeded', now, { outcome: 'promoted', reason_code: 'no_evidence' }, `${version} promoted without evidence: no passing check during the bake and ${extensions} extension${extensions === 1 ? '' : 's'}${last} (the policy says on_no_evidence: succeed)`);
            d.wakeAt = null;
          } else {
            fail(d, now, 'rolled_back', 'no_evidence', `no passing check during the bake and ${extensions} extension${extensions === 1 ? '' : 's'}${last}`, restore, { previous_stable: null });
          }
        } else {
          const times = [d.state.next_check_at, s.bake_until].filter((x): x is string => x !== undefined).map((x) => Date.parse(x));
          d.wakeAt = new Date(times.length ? Math.min(...times) : poll.getTime());
        }
        break;
      }
      case 'Failed': {
        const r = obs.stable;
        const restore = s.restore;
        if (!restore) {
          if (r?.state === 'progressing') d.wakeAt = poll;
          break;
        }
        if (r?.state === 'ready') {
          d.state = { ...s, stable: { ...restore, target: r.target }, restore: null };
          d.events.push(event(d.state, 'restored', at, { reason: `stable ${restore.version} restored` }));
        } else d.wakeAt = poll;
        break;
      }
      default:
        // Settled: nothing to decide, but keep looking while the stable is still starting.
        if (obs.stable?.state === 'progressing') d.wakeAt = poll;
        break;
    }
  }
  replayWithWindow(d);
  if (d.wakeAt === null && !isSettled(d.state)) d.wakeAt = poll;
  return { state: d.state, changed: d.state !== state, events: d.events, replay: [...new Set(d.replay)], wakeAt: d.wakeAt };
}
