import { describe, expect, it } from 'vitest';
import { ApiKeys, bearerToken } from './api-keys.js';

describe('ApiKeys', () => {
  const keys = new ApiKeys(['k-0123456789abcdef', 'other-key-0123456789']);

  it.each([
    ['Bearer k-0123456789abcdef', true],
    ['bearer other-key-0123456789', true],
    ['Bearer  k-0123456789abcdef ', true],
    ['Bearer k-0123456789abcdeg', false],
    ['Bearer k-0123456789abcdef0', false],
    ['Bearer k-0123456789abcde', false],
    ['k-0123456789abcdef', false],
    ['Basic k-0123456789abcdef', false],
    ['Bearer ', false],
    ['', false],
    [undefined, false],
  ])('%s → %s', (header, expected) => {
    expect(keys.acceptsAuthorization(header)).toBe(expected);
  });

  it('is open when no keys are configured', () => {
    expect(new ApiKeys([]).open).toBe(true);
    expect(new ApiKeys([]).acceptsAuthorization(undefined)).toBe(true);
  });

  it('never serializes its keys', () => {
    const text = `${JSON.stringify({ keys })} ${String(Object.keys(keys))}`;
    expect(text).not.toContain('k-0123456789abcdef');
    expect(text).not.toContain('other-key');
  });

  it('extracts bearer tokens', () => {
    expect(bearerToken('Bearer abc')).toBe('abc');
    expect(bearerToken('Bearer a b')).toBeUndefined();
  });
});
