// The promoter's metrics (docs/architecture.md#metrics), served on :9102 /metrics. One registry per process,
// created in main.ts and shared with the intake, so the families exist exactly once.
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import { ROLLOUT_PHASES, type RolloutPhase } from '@segserve/proto';
import type { RolloutEvent, RolloutRecord } from '../domain/rollout.js';

export class PromoterTelemetry {
  readonly registry: Registry;
  readonly results: Counter<'model' | 'outcome'>;
  readonly phase: Gauge<'model' | 'phase'>;
  readonly canaryWeight: Gauge<'model'>;
  readonly checks: Counter<'model' | 'check' | 'result'>;
  readonly unverified: Counter<'model' | 'reason_code'>;

  constructor(options: { registry?: Registry; defaultMetrics?: boolean } = {}) {
    this.registry = options.registry ?? new Registry();
    if (options.defaultMetrics) collectDefaultMetrics({ register: this.registry });
    const registers = [this.registry];
    this.results = new Counter({ name: 'segserve_promoter_results_total', help: 'Experiment results by final outcome (promoted, rejected, rolled_back, and the intake’s own outcomes)', labelNames: ['model', 'outcome'], registers });
    this.phase = new Gauge({ name: 'segserve_rollout_phase', help: '1 for the current rollout phase of a model, 0 for the others', labelNames: ['model', 'phase'], registers });
    this.canaryWeight = new Gauge({ name: 'segserve_rollout_canary_weight', help: 'Percentage of requests routed to the canary', labelNames: ['model'], registers });
    this.unverified = new Counter({ name: 'segserve_promoter_unverified_results_total', help: 'Results rejected before their signature was verified (counted, never stored); model is (unknown) for models without a policy', labelNames: ['model', 'reason_code'], registers });
    this.checks = new Counter({ name: 'segserve_promoter_checks_total', help: 'Canary and bake checks by criterion and result (pass, fail, hold, skip)', labelNames: ['model', 'check', 'result'], registers });
  }

  /** Gauges follow the state as written (or as read at start-up / from another promoter). */
  observeState(s: RolloutRecord): void {
    for (const p of ROLLOUT_PHASES) this.phase.set({ model: s.model, phase: p }, p === s.phase ? 1 : 0);
    this.canaryWeight.set({ model: s.model }, s.canary?.weight ?? 0);
  }

  /** Counters follow the events this promoter produced (each once). */
  observeEvents(events: readonly RolloutEvent[], s: RolloutRecord): void {
    for (const e of events) {
      if (e.type === 'check') for (const c of e.checks ?? []) this.checks.inc({ model: e.model, check: c.check, result: c.result });
      if (e.type === 'phase' && isEnd(e.phase) && s.outcome) this.results.inc({ model: e.model, outcome: s.outcome });
    }
  }
}

function isEnd(phase: RolloutPhase): boolean {
  return phase === 'Succeeded' || phase === 'Failed';
}
