import { describe, expect, it } from 'vitest';
import { decideArena, initialArena, type ArenaDecision, type ArenaPolicy } from './arena.js';

const MB = 2 ** 20;
// 5 % of 512 MiB: 25.6 MiB of activations, all sessions together.
const auto: ArenaPolicy = { mode: 'auto', sessions: 1, limitBytes: 512 * MB, maxShare: 0.05 };

describe('decideArena', () => {
  it.each<[string, ArenaPolicy, number | undefined, ArenaDecision]>([
    ['on whatever the size', { ...auto, mode: 'on' }, 400 * MB, { arena: true, reason: 'set' }],
    ['off whatever the size', { ...auto, mode: 'off' }, 1 * MB, { arena: false, reason: 'set' }],
    ['on needs no measurement', { ...auto, mode: 'on' }, undefined, { arena: true, reason: 'set' }],
    ['auto, a small model', auto, 8 * MB, { arena: true, reason: 'small-activations' }],
    ['auto, a full-size model', auto, 100 * MB, { arena: false, reason: 'large-activations' }],
    ['auto, at the share exactly', auto, 0.05 * 512 * MB, { arena: true, reason: 'small-activations' }],
    ['auto, one byte over', auto, 0.05 * 512 * MB + 1, { arena: false, reason: 'large-activations' }],
    ['auto, nothing measured (not Linux)', auto, undefined, { arena: false, reason: 'not-measured' }],
    ['auto, a run that grew nothing', auto, 0, { arena: true, reason: 'small-activations' }],
    // Every session keeps its own arena.
    ['auto, 4 sessions of a small model', { ...auto, sessions: 4 }, 8 * MB, { arena: false, reason: 'large-activations' }],
    ['auto, 3 sessions of it', { ...auto, sessions: 3 }, 8 * MB, { arena: true, reason: 'small-activations' }],
    // The share is of the limit the pod has.
    ['auto, a larger pod', { ...auto, limitBytes: 4096 * MB }, 100 * MB, { arena: true, reason: 'small-activations' }],
    ['auto, a smaller pod', { ...auto, limitBytes: 128 * MB }, 8 * MB, { arena: false, reason: 'large-activations' }],
  ])('%s', (_name, policy, growth, expected) => {
    expect(decideArena(policy, growth)).toEqual(expected);
  });
});

describe('initialArena', () => {
  it.each([
    ['on', true],
    ['off', false],
    // Measured with the arena off first: its growth is then one run's activations.
    ['auto', false],
  ] as const)('%s → %s', (mode, expected) => {
    expect(initialArena(mode)).toBe(expected);
  });
});
