import { describe, expect, it } from 'vitest';
import { parseStartupLine, startupLine, STARTUP_MESSAGES, type StartupService } from './startup-line.js';

const line = (o: Record<string, unknown>): string => JSON.stringify({ level: 'info', time: '2026-01-01T00:00:00.000Z', ...o });

describe('parseStartupLine', () => {
  const cases: Array<[string, StartupService, string, boolean]> = [
    ['inference serving with both ports', 'inference', line({ service: 'inference', msg: 'serving', grpc_port: 50051, metrics_port: 9100, model: 'm', version: '1' }), true],
    ['gateway listening', 'gateway', line({ service: 'gateway', msg: 'listening', http_port: 8080, grpc_port: 9090 }), true],
    ['promoter running', 'promoter', line({ service: 'promoter', msg: 'running', metrics_port: 9102, state_dir: '/tmp/x' }), true],
    ['trailing newline and spaces are fine', 'gateway', `  ${line({ service: 'gateway', msg: 'listening', http_port: 1, grpc_port: 2 })}\n`, true],
    ['another message', 'inference', line({ service: 'inference', msg: 'starting', grpc_port: 50051, metrics_port: 9100 }), false],
    ["another service's line", 'inference', line({ service: 'gateway', msg: 'serving', grpc_port: 1, metrics_port: 2 }), false],
    ['a line without service', 'inference', line({ msg: 'serving', grpc_port: 1, metrics_port: 2 }), false],
    ['a port missing', 'gateway', line({ service: 'gateway', msg: 'listening', http_port: 8080 }), false],
    ['port 0 (not bound yet)', 'gateway', line({ service: 'gateway', msg: 'listening', http_port: 0, grpc_port: 9090 }), false],
    ['a port as a string', 'promoter', line({ service: 'promoter', msg: 'running', metrics_port: '9102' }), false],
    ['a port out of range', 'promoter', line({ service: 'promoter', msg: 'running', metrics_port: 70000 }), false],
    ['plain text mentioning the message', 'inference', 'the server is "serving" now', false],
    ['truncated JSON', 'inference', '{"service":"inference","msg":"serving","grpc_port":1', false],
    ['JSON that is not an object', 'gateway', '"listening"', false],
  ];
  it.each(cases)('%s', (_what, service, text, expected) => {
    const parsed = parseStartupLine(service, text);
    expect(parsed !== undefined).toBe(expected);
    if (parsed) expect(parsed.msg).toBe(STARTUP_MESSAGES[service]);
  });

  it('gives the typed fields back', () => {
    const parsed = parseStartupLine('inference', line({ service: 'inference', msg: 'serving', grpc_port: 4000, metrics_port: 4001, version: '2' }));
    expect(parsed?.grpc_port).toBe(4000);
    expect(parsed?.metrics_port).toBe(4001);
    expect(parsed?.version).toBe('2');
  });

  it('reads what a server writes with startupLine', () => {
    const [msg, fields] = startupLine('gateway', { http_port: 8080, grpc_port: 9090, host: '127.0.0.1' });
    expect(parseStartupLine('gateway', line({ service: 'gateway', msg, ...fields }))).toMatchObject({ http_port: 8080, grpc_port: 9090, host: '127.0.0.1' });
  });
});
