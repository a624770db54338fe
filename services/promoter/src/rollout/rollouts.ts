// The promoter's RolloutRunner: one ModelController per model, rollouts of a model one at a
// time (a newer candidate waits for the running one), resumption of whatever KV says is in
// progress when the promoter starts, and manual rollback requests.
import type { Candidate, RolloutOutcome, RolloutRunner } from '../domain/ports.js';
import { isSettled, outcomeOf, rollbackRefusal, startRollout, type RolloutEvent, type RolloutRecord } from '../domain/rollout.js';
import { ModelController, isConflict, type ControllerDeps } from './controller.js';

export interface RolloutsOptions extends ControllerDeps {
  /** How often `hooks.working()` is called while a rollout runs (ms, default 10 s). */
  readonly workingIntervalMs?: number;
}

export type RollbackAnswer = { readonly ok: true; readonly message: string } | { readonly ok: false; readonly message: string };

function abortError(): Error {
  const err = new Error('rollout wait aborted');
  err.name = 'AbortError';
  return err;
}

/** Resolves when `p` settles or `signal` aborts (then rejects with an AbortError). */
function untilAborted<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(abortError());
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(abortError());
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

function startEvent(s: RolloutRecord): RolloutEvent {
  return { type: 'phase', model: s.model, experiment_id: s.experiment_id ?? null, version: s.candidate?.version ?? null, phase: s.phase, step: null, weight: 0, at: s.updated_at, reason: `verifying ${s.candidate?.version ?? '?'}` };
}

export class Rollouts implements RolloutRunner {
  private readonly controllers = new Map<string, ModelController>();
  private readonly lifetime = new AbortController();

  constructor(private readonly deps: RolloutsOptions) {}

  controller(model: string): ModelController {
    let c = this.controllers.get(model);
    if (!c) {
      c = new ModelController(model, this.deps, this.lifetime.signal);
      this.controllers.set(model, c);
    }
    return c;
  }

  async run(candidate: Candidate, hooks: { readonly working: () => void; readonly signal: AbortSignal }): Promise<RolloutOutcome> {
    const { store, clock, log } = this.deps;
    const model = candidate.ref.model;
    const ctl = this.controller(model);
    const working = setInterval(hooks.working, this.deps.workingIntervalMs ?? 10_000);
    try {
      for (;;) {
        if (this.lifetime.signal.aborted || hooks.signal.aborted) throw abortError();
        const stored = await store.get(model);
        const start = startRollout(stored?.record ?? null, candidate, clock());
        if (!start) {
          // One rollout per model: wait for the one in progress (driven here or elsewhere).
          log.info('rollout queued behind the one in progress', { model, experiment_id: candidate.id, running: stored?.record.experiment_id });
          await untilAborted(Promise.race([ctl.drive(), new Promise((r) => setTimeout(r, 5_000))]), hooks.signal);
          continue;
        }
        if (start !== stored?.record) {
          try {
            const written = await store.write(start, stored, clock());
            log.info('phase', { model, phase: 'Verifying', version: candidate.ref.version, experiment_id: candidate.id });
            await ctl.noteWritten(written, [startEvent(written.record)]);
          } catch (err) {
            if (isConflict(err)) continue;
            throw err;
          }
        }
        await untilAborted(ctl.drive(), hooks.signal);
        const latest = await store.get(model);
        if (latest && latest.record.experiment_id !== candidate.id) {
          // Only a manual change of the state can do this; report, never run it twice.
          return { outcome: 'rolled_back', reasonCode: 'superseded', reason: `the rollout state of ${model} moved on to ${String(latest.record.experiment_id)}` };
        }
        const outcome = latest ? outcomeOf(latest.record) : undefined;
        if (outcome) return outcome;
      }
    } finally {
      clearInterval(working);
    }
  }

  /**
   * Records a manual rollback request in the state (compare-and-set) and wakes the model's
   * loop, which carries it out like any other decision. Refused when there is nothing to
   * roll back to.
   */
  async requestRollback(model: string, reason: string): Promise<RollbackAnswer> {
    const { store, clock } = this.deps;
    for (let attempt = 0; attempt < 5; attempt++) {
      const stored = await store.get(model);
      const refusal = rollbackRefusal(stored?.record ?? null);
      if (refusal || !stored) return { ok: false, message: `${model}: ${refusal ?? 'no state'}` };
      const at = clock().toISOString();
      try {
        const written = await store.write({ ...stored.record, rollback_requested: { reason, at } }, stored, clock());
        const ctl = this.controller(model);
        await ctl.noteWritten(written, [{ type: 'rollback_requested', model, experiment_id: stored.record.experiment_id ?? null, version: stored.record.candidate?.version ?? null, phase: stored.record.phase, step: stored.record.step ?? null, weight: stored.record.canary?.weight ?? 0, at, reason }]);
        ctl.notifyChange(-1);
        return { ok: true, message: `${model}: rollback requested in phase ${stored.record.phase}` };
      } catch (err) {
        if (!isConflict(err)) throw err;
      }
    }
    return { ok: false, message: `${model}: the rollout state keeps changing; try again` };
  }

  /** Picks up every model in KV: rollouts in progress resume, settled ones get their tracks back. */
  async resumeAll(): Promise<void> {
    for (const { record } of await this.deps.store.list()) {
      this.deps.telemetry.observeState(record);
      if (!isSettled(record)) this.deps.log.info('resuming rollout', { model: record.model, phase: record.phase, experiment_id: record.experiment_id, step: record.step });
      void this.controller(record.model).drive();
    }
  }

  /** A change of a model's state seen on the KV watch. */
  onStateChange(record: RolloutRecord, revision: number): void {
    this.deps.telemetry.observeState(record);
    this.controller(record.model).notifyChange(revision);
  }

  async close(): Promise<void> {
    this.lifetime.abort();
    await Promise.all([...this.controllers.values()].map(async (c) => {
      await c.drive().catch(() => undefined);
      await c.settleReplays();
    }));
  }
}
