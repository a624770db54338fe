// A value read from KV `segserve_rollouts` is input from another process: check the fields the
// gateway routes by before trusting it. A bad value is reported and the last good state kept.
import { isValidModelName, type CanaryTrackState, type RolloutState, type TrackState } from '@segserve/proto';

export type ParsedEntry = { readonly ok: true; readonly state: RolloutState } | { readonly ok: false; readonly message: string };

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function track(v: unknown, name: string): TrackState | string {
  if (!isObject(v)) return `${name} is not an object`;
  if (typeof v['version'] !== 'string') return `${name}.version is not a string`;
  if (typeof v['target'] !== 'string' || v['target'].trim() === '') return `${name}.target is missing`;
  return { version: v['version'], sha256: typeof v['sha256'] === 'string' ? v['sha256'] : '', target: v['target'].trim() };
}

/** Parses the JSON of key `key`; the key and the state's model must agree. */
export function parseRolloutEntry(key: string, json: string): ParsedEntry {
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch {
    return { ok: false, message: `key '${key}': not JSON` };
  }
  if (!isObject(value)) return { ok: false, message: `key '${key}': not an object` };
  if (value['model'] !== key || !isValidModelName(key)) return { ok: false, message: `key '${key}': model is '${String(value['model'])}'` };
  let stable: TrackState | null = null;
  if (value['stable'] !== null && value['stable'] !== undefined) {
    const s = track(value['stable'], 'stable');
    if (typeof s === 'string') return { ok: false, message: `key '${key}': ${s}` };
    stable = s;
  }
  let canary: CanaryTrackState | null = null;
  if (value['canary'] !== null && value['canary'] !== undefined) {
    const c = track(value['canary'], 'canary');
    if (typeof c === 'string') return { ok: false, message: `key '${key}': ${c}` };
    const weight = (value['canary'] as Record<string, unknown>)['weight'];
    if (typeof weight !== 'number' || !Number.isFinite(weight) || weight < 0 || weight > 100) {
      return { ok: false, message: `key '${key}': canary.weight is not a percentage` };
    }
    canary = { ...c, weight };
  }
  const state: RolloutState = {
    ...value,
    model: key,
    stable,
    canary,
    phase: typeof value['phase'] === 'string' ? (value['phase'] as RolloutState['phase']) : 'Idle',
    updated_at: typeof value['updated_at'] === 'string' ? value['updated_at'] : '',
    revision: typeof value['revision'] === 'number' ? value['revision'] : 0,
  };
  return { ok: true, state };
}
