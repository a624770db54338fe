import { describe, expect, it } from 'vitest';
import { earliestDeadline, effectiveTimeoutMs } from './deadline.js';

describe('effectiveTimeoutMs', () => {
  it.each([
    [undefined, { ok: true, ms: 30_000 }],
    ['', { ok: true, ms: 30_000 }],
    ['500', { ok: true, ms: 500 }],
    [' 500 ', { ok: true, ms: 500 }],
    ['999999', { ok: true, ms: 30_000 }],
    ['0', { ok: false, message: 'x-segserve-timeout-ms must be positive' }],
    ['-5', { ok: false, message: 'x-segserve-timeout-ms must be a whole number of milliseconds' }],
    ['1.5', { ok: false, message: 'x-segserve-timeout-ms must be a whole number of milliseconds' }],
    ['soon', { ok: false, message: 'x-segserve-timeout-ms must be a whole number of milliseconds' }],
  ])('%s', (header, expected) => {
    expect(effectiveTimeoutMs(30_000, header)).toEqual(expected);
  });
});

describe('earliestDeadline', () => {
  it.each([
    [1000, 500, undefined, 1500],
    [1000, 500, 1200, 1200],
    [1000, 500, 9000, 1500],
    [1000, 500, Number.POSITIVE_INFINITY, 1500],
  ])('now %d + %d, caller %s → %d', (now, timeout, caller, expected) => {
    expect(earliestDeadline(now, timeout, caller)).toBe(expected);
  });
});
