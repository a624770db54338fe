import { describe, expect, it } from 'vitest';
import { parseRolloutEntry } from './rollout-entry.js';

const good = {
  model: 'facade-ads',
  stable: { version: '2', sha256: 'aa', target: 'ipv4:127.0.0.1:1' },
  canary: { version: '3', sha256: 'bb', target: 'ipv4:127.0.0.1:2', weight: 25 },
  phase: 'Canary',
  step: 1,
  updated_at: '2026-01-01T00:00:00Z',
  revision: 7,
  experiment: 'exp-1',
};

describe('parseRolloutEntry', () => {
  it('accepts a full state and keeps extra fields', () => {
    const r = parseRolloutEntry('facade-ads', JSON.stringify(good));
    expect(r).toEqual({ ok: true, state: good });
  });

  it('accepts a state without canary', () => {
    const r = parseRolloutEntry('facade-ads', JSON.stringify({ ...good, canary: null, phase: 'Succeeded' }));
    expect(r.ok && r.state.canary).toBeNull();
  });

  it.each([
    ['not JSON', '{', /not JSON/],
    ['an array', '[]', /not an object/],
    ['key and model differ', JSON.stringify({ ...good, model: 'other' }), /model is 'other'/],
    ['stable without target', JSON.stringify({ ...good, stable: { version: '2' } }), /stable.target is missing/],
    ['version not a string', JSON.stringify({ ...good, stable: { version: 2, target: 'x:1' } }), /stable.version/],
    ['weight missing', JSON.stringify({ ...good, canary: { version: '3', target: 'x:1' } }), /canary.weight/],
    ['weight over 100', JSON.stringify({ ...good, canary: { ...good.canary, weight: 101 } }), /canary.weight/],
  ])('rejects %s', (_name, json, message) => {
    const r = parseRolloutEntry('facade-ads', json);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.message).toMatch(message);
  });
});
