import { describe, expect, it } from 'vitest';
import { createLogger, isLogLevel, serializeError, silentLogger, type LogLevel } from './logger.js';

const capture = (level: LogLevel) => {
  const lines: Array<Record<string, unknown>> = [];
  const logger = createLogger({ level, service: 'gateway', write: (l) => lines.push(JSON.parse(l) as Record<string, unknown>), now: () => new Date('2026-01-01T00:00:00Z') });
  return { lines, logger };
};

describe('logger', () => {
  it('writes one JSON object per line with level, time, service, msg, bound fields and fields', () => {
    const { lines, logger } = capture('info');
    logger.child({ component: 'x' }).child({ model: 'm' }).info('hello', { port: 1 });
    expect(lines).toEqual([{ level: 'info', time: '2026-01-01T00:00:00.000Z', service: 'gateway', msg: 'hello', component: 'x', model: 'm', port: 1 }]);
  });

  it('serialises errors with their code and cause chain, at any depth of the fields', () => {
    const { lines, logger } = capture('info');
    const err = Object.assign(new Error('boom', { cause: new Error('root') }), { code: 'E_X' });
    logger.error('failed', { error: err, nested: { inner: new TypeError('bad') } });
    expect(lines[0]).toMatchObject({ error: { name: 'Error', message: 'boom', code: 'E_X', cause: { name: 'Error', message: 'root' } }, nested: { inner: { name: 'TypeError', message: 'bad' } } });
    expect((lines[0]!['error'] as { stack: string }).stack).toMatch(/boom/);
  });

  it('leaves non-errors alone and stops following causes after three levels', () => {
    expect(serializeError('plain')).toBe('plain');
    let err = new Error('e0');
    for (let i = 1; i <= 5; i++) err = new Error(`e${i}`, { cause: err });
    let depth = 0;
    for (let o = serializeError(err) as { cause?: unknown }; o.cause !== undefined; o = o.cause as { cause?: unknown }) depth++;
    expect(depth).toBe(3);
  });

  it('filters by level, but announcements always pass', () => {
    const { lines, logger } = capture('warn');
    logger.debug('d');
    logger.info('i');
    logger.warn('w');
    logger.announce('listening', { http_port: 1 });
    expect(lines.map((l) => [l['level'], l['msg']])).toEqual([
      ['warn', 'w'],
      ['info', 'listening'],
    ]);
  });

  it('knows its levels; the silent logger writes nothing and stays silent as a child', () => {
    expect(['debug', 'info', 'warn', 'error'].every(isLogLevel)).toBe(true);
    expect(isLogLevel('verbose')).toBe(false);
    expect(silentLogger.child({ a: 1 })).toBe(silentLogger);
  });
});
