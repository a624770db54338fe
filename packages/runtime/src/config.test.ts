import { describe, expect, it } from 'vitest';
import { boolVar, checkUnknownVars, ConfigError, deepFreeze, enumVar, intVar, listVar, logLevelVar, natsUrlVar, portVar, ratioVar, readVar, requireVar, sha256Var, urlVar } from './config.js';

/** The ConfigError `fn` throws (fails the test when it throws nothing or something else). */
function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error('no ConfigError thrown');
}

describe('config readers', () => {
  it('treat unset and blank alike, and trim', () => {
    expect(readVar({ A: '  x ' }, 'A')).toBe('x');
    expect(readVar({ A: '   ' }, 'A')).toBeUndefined();
    expect(intVar({}, 'N', 7, { min: 0 })).toBe(7);
    expect(listVar({ L: ' a, ,b ,' }, 'L')).toEqual(['a', 'b']);
  });

  it.each([
    ['a whole number', () => intVar({ N: '12' }, 'N', 0, { min: 1, max: 20 }), 12],
    ['a port', () => portVar({ P: '0' }, 'P', 80), 0],
    ['a ratio', () => ratioVar({ R: '0.25' }, 'R', 0), 0.25],
    ['true', () => boolVar({ B: 'Yes' }, 'B', false), true],
    ['false', () => boolVar({ B: 'off' }, 'B', true), false],
    ['an enum', () => enumVar({ E: 'kubernetes' }, 'E', ['local', 'kubernetes'], 'local'), 'kubernetes'],
    ['a log level in capitals', () => logLevelVar({ SEGSERVE_LOG_LEVEL: 'WARN' }), 'warn'],
    ['an http URL', () => urlVar({ U: 'http://prom:9090' }, 'U', ['http', 'https']), 'http://prom:9090'],
    ['NATS URLs with credentials', () => natsUrlVar({ SEGSERVE_NATS_URL: 'nats://u:p@a:4222,nats://b:4222' }), 'nats://u:p@a:4222,nats://b:4222'],
    ['a bare host:port', () => natsUrlVar({ SEGSERVE_NATS_URL: 'nats:4222' }), 'nats:4222'],
    ['a digest in capitals', () => sha256Var({ D: 'A'.repeat(64) }, 'D'), 'a'.repeat(64)],
  ])('read %s', (_what, read, expected) => {
    expect(read()).toEqual(expected);
  });

  it.each([
    ['not a number', () => intVar({ N: '1.5' }, 'N', 0, { min: 0 }), 'N', /not a whole number/],
    ['below the range', () => intVar({ N: '0' }, 'N', 1, { min: 1, max: 5 }), 'N', /outside 1–5/],
    ['a port too high', () => portVar({ P: '70000' }, 'P', 80), 'P', /outside 0–65535/],
    ['a ratio above 1', () => ratioVar({ R: '1.5' }, 'R', 0), 'R', /0\.\.1/],
    ['a non-boolean', () => boolVar({ B: 'maybe' }, 'B', false), 'B', /not a boolean/],
    ['an unknown choice', () => enumVar({ E: 'docker' }, 'E', ['local', 'kubernetes'], 'local'), 'E', /not one of local, kubernetes/],
    ['a log level', () => logLevelVar({ SEGSERVE_LOG_LEVEL: 'verbose' }), 'SEGSERVE_LOG_LEVEL', /not one of debug, info, warn, error/],
    ['a URL scheme', () => urlVar({ U: 'ftp://x' }, 'U', ['http']), 'U', /must start with http:\/\//],
    ['not a URL', () => urlVar({ U: 'http://' }, 'U', ['http']), 'U', /not a URL/],
    ['an http URL as NATS URL', () => natsUrlVar({ SEGSERVE_NATS_URL: 'http://nats:4222' }), 'SEGSERVE_NATS_URL', /not a NATS URL/],
    ['a short digest', () => sha256Var({ D: 'abc' }, 'D'), 'D', /sha256/],
    ['a missing required value', () => requireVar({}, 'SEGSERVE_NATS_URL', 'nats://127.0.0.1:4222'), 'SEGSERVE_NATS_URL', /required \(nats:\/\/127\.0\.0\.1:4222\)/],
  ])('fail on %s, naming the variable', (_what, read, variable, message) => {
    const err = configError(read);
    expect(err.variable).toBe(variable);
    expect(err.message.startsWith(`${variable}: `)).toBe(true);
    expect(err.message).toMatch(message);
  });

  it('never put NATS credentials into the message', () => {
    const err = configError(() => natsUrlVar({ SEGSERVE_NATS_URL: 'http://user:hunter2@nats:4222' }));
    expect(err.message).toContain('***@');
    expect(err.message).not.toContain('hunter2');
  });
});

describe('checkUnknownVars', () => {
  it('accepts every known name, also those of other services, and ignores other variables', () => {
    expect(() => checkUnknownVars({ SEGSERVE_UPSTREAMS: 'x', SEGSERVE_POLICY: 'p', PATH: '/bin' })).not.toThrow();
  });

  it('names the first unknown SEGSERVE_* variable and lists the others', () => {
    const err = configError(() => checkUnknownVars({ SEGSERVE_MAX_CONCURENCY: '2', SEGSERVE_GRCP_PORT: '1' }));
    expect(err.variable).toBe('SEGSERVE_MAX_CONCURENCY');
    expect(err.message).toMatch(/unknown variable.*also SEGSERVE_GRCP_PORT/);
  });
});

describe('deepFreeze', () => {
  it('freezes nested objects', () => {
    const v = deepFreeze({ a: { b: [1, 2] } });
    expect(Object.isFrozen(v.a)).toBe(true);
    expect(Object.isFrozen(v.a.b)).toBe(true);
  });
});
