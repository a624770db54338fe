import { describe, expect, it } from 'vitest';
import type { RolloutState } from '@segserve/proto';
import { chooseTrack, decideRoute, routeWeights, targetsOf, trackForVersion } from './routing.js';

const stable = { version: '2', sha256: 'a', target: 'ipv4:127.0.0.1:1' };
const canary = (weight: number) => ({ version: '3', sha256: 'b', target: 'ipv4:127.0.0.1:2', weight });
const state = (s: RolloutState['stable'], c: RolloutState['canary']): RolloutState => ({ model: 'm', stable: s, canary: c, phase: c ? 'Canary' : 'Idle', updated_at: '', revision: 1 });

describe('chooseTrack', () => {
  it.each([
    ['stable only', state(stable, null), 0.0, 'stable'],
    ['stable only, high draw', state(stable, null), 0.999, 'stable'],
    ['canary 10%, draw below', state(stable, canary(10)), 0.0999, 'canary'],
    ['canary 10%, draw at the edge', state(stable, canary(10)), 0.1, 'stable'],
    ['canary 0%', state(stable, canary(0)), 0.0, 'stable'],
    ['canary 100%', state(stable, canary(100)), 0.9999, 'canary'],
    ['canary weight over 100 is clamped', state(stable, canary(250)), 0.9999, 'canary'],
    ['negative weight counts as 0', state(stable, canary(-5)), 0.0, 'stable'],
    ['NaN weight counts as 0', state(stable, canary(Number.NaN)), 0.0, 'stable'],
    ['canary only takes everything', state(null, canary(10)), 0.99, 'canary'],
    ['nothing', state(null, null), 0.5, undefined],
  ] as const)('%s', (_name, s, random, expected) => {
    expect(chooseTrack(s, random)).toBe(expected);
  });

  it('splits by weight within statistical bounds (seeded generator, 20 000 draws)', () => {
    // Mulberry32: deterministic, so this test fails only if the split is wrong.
    let seed = 42;
    const random = (): number => {
      seed = (seed + 0x6d2b79f5) | 0;
      let t = seed;
      t = Math.imul(t ^ (t >>> 15), t | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
    for (const weight of [1, 10, 25, 50, 90]) {
      const n = 20_000;
      let canaries = 0;
      for (let i = 0; i < n; i++) if (chooseTrack(state(stable, canary(weight)), random()) === 'canary') canaries++;
      const p = weight / 100;
      const sd = Math.sqrt(n * p * (1 - p));
      expect(Math.abs(canaries - n * p)).toBeLessThan(5 * sd);
    }
  });
});

describe('routeWeights', () => {
  it.each([
    [state(stable, null), { stable: 100, canary: 0 }],
    [state(stable, canary(25)), { stable: 75, canary: 25 }],
    [state(null, canary(25)), { stable: 0, canary: 100 }],
    [state(null, null), { stable: 0, canary: 0 }],
    [state(stable, canary(120)), { stable: 0, canary: 100 }],
  ])('%#', (s, expected) => {
    expect(routeWeights(s)).toEqual(expected);
  });
});

describe('decideRoute', () => {
  const unknownVersions = state({ ...stable, version: '' }, null);
  it.each([
    ['no version: weighted', state(stable, canary(50)), '', 0.1, { kind: 'route', track: 'canary', version: '' }],
    ['no version: weighted, stable', state(stable, canary(50)), '', 0.9, { kind: 'route', track: 'stable', version: '' }],
    ['stable version requested', state(stable, canary(50)), '2', 0.1, { kind: 'route', track: 'stable', version: '2' }],
    ['canary version requested, even at weight 0', state(stable, canary(0)), '3', 0.9, { kind: 'route', track: 'canary', version: '3' }],
    ['unknown version', state(stable, canary(50)), '7', 0.1, { kind: 'unknown-version' }],
    ['static route: version unknown, forwarded to stable', unknownVersions, '7', 0.1, { kind: 'route', track: 'stable', version: '7' }],
    ['no tracks', state(null, null), '', 0.1, { kind: 'no-upstream' }],
  ] as const)('%s', (_name, s, requested, random, expected) => {
    expect(decideRoute(s, requested, random)).toEqual(expected);
  });
});

describe('trackForVersion / targetsOf', () => {
  it('finds the track of a version', () => {
    expect(trackForVersion(state(stable, canary(5)), '3')).toBe('canary');
    expect(trackForVersion(state(stable, canary(5)), '2')).toBe('stable');
    expect(trackForVersion(state(stable, null), '3')).toBeUndefined();
  });
  it('collects every target once', () => {
    expect([...targetsOf([state(stable, canary(5)), state(stable, null)])].sort()).toEqual(['ipv4:127.0.0.1:1', 'ipv4:127.0.0.1:2']);
  });
});
