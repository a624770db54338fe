// The current stable of a model, read (never written) from the rollout state in KV
// `segserve_rollouts` (DESIGN.md §6), which only the rollout controller writes.
import type { KV } from '@nats-io/kv';
import type { RolloutState } from '@segserve/proto';
import type { ModelRef } from '../domain/ports.js';

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
