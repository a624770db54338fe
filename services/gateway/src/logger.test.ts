import { describe, expect, it } from 'vitest';
import { createLogger } from './logger.js';

describe('logger', () => {
  const capture = (level: 'debug' | 'info' | 'warn' | 'error') => {
    const lines: Array<Record<string, unknown>> = [];
    const logger = createLogger({ level, service: 'gateway', write: (l) => lines.push(JSON.parse(l) as Record<string, unknown>), now: () => new Date('2026-01-01T00:00:00Z') });
    return { lines, logger };
  };

  it('writes one JSON object per line with level, time, service and msg', () => {
    const { lines, logger } = capture('info');
    logger.child({ component: 'x' }).info('hello', { port: 1, error: new Error('boom', { cause: new Error('root') }) });
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ level: 'info', time: '2026-01-01T00:00:00.000Z', service: 'gateway', msg: 'hello', component: 'x', port: 1, error: { message: 'boom', cause: { message: 'root' } } });
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
});
