// What the intake and the verifier read (never write) from the rollout state in KV
// `segserve_rollouts` (docs/architecture.md#nats), which only the rollout controller writes: the current
// stable, and the verification report the controller keeps with the rollout it ran.
import type { KV } from '@nats-io/kv';
import type { RolloutState } from '@segserve/proto';
import type { ModelRef, VerificationReport } from '../domain/ports.js';

export interface StableRef extends ModelRef {
  readonly target: string;
}

export function currentStableFrom(rollouts: KV): (model: string) => Promise<StableRef | null> {
  return async (model) => {
    const entry = await rollouts.get(model);
    if (!entry || entry.operation !== 'PUT' || entry.length === 0) return null;
    const state = entry.json<RolloutState>();
    return state.stable ? { model, version: state.stable.version, sha256: state.stable.sha256, target: state.stable.target } : null;
  };
}

/** The verification report of experiment `id`, if the rollout state of `model` still holds it. */
export function verificationFrom(rollouts: KV): (model: string, id: string) => Promise<VerificationReport | null> {
  return async (model, id) => {
    const entry = await rollouts.get(model);
    if (!entry || entry.operation !== 'PUT' || entry.length === 0) return null;
    const state = entry.json<RolloutState & { experiment_id?: unknown; verification?: VerificationReport }>();
    return state.experiment_id === id && state.verification ? state.verification : null;
  };
}
