import { describe, expect, it } from 'vitest';
import { ConfigError, DEFAULTS, loadConfig } from './config.js';

const NOW = new Date('2026-01-01T00:00:00Z');
const base = { SEGSERVE_UPSTREAMS: 'facade-ads=ipv4:127.0.0.1:50051' };

describe('loadConfig', () => {
  it('has the documented defaults', () => {
    const c = loadConfig(base, NOW);
    expect(c).toMatchObject({
      host: '0.0.0.0',
      httpPort: 8080,
      grpcPort: 9090,
      natsUrl: undefined,
      apiKeys: [],
      logLevel: 'info',
      deadlineMs: 30_000,
      defaultModel: 'facade-ads',
      maxMessageBytes: 32 * 1024 * 1024,
      maxUploadBytes: 32 * 1024 * 1024 - DEFAULTS.envelopeBytes,
      memoryLimitBytes: 512 * 1024 * 1024,
    });
    expect(c.staticRoutes).toHaveLength(1);
    expect(Object.isFrozen(c)).toBe(true);
  });

  it('reads every variable', () => {
    const c = loadConfig(
      {
        SEGSERVE_HOST: '127.0.0.1',
        SEGSERVE_HTTP_PORT: '0',
        SEGSERVE_GRPC_PORT: '9999',
        SEGSERVE_UPSTREAMS: 'a=ipv4:127.0.0.1:1;b=ipv4:127.0.0.1:2',
        SEGSERVE_NATS_URL: 'nats://127.0.0.1:4222',
        SEGSERVE_API_KEYS: ' key-one-0123456789 , key-two-0123456789 ,',
        SEGSERVE_LOG_LEVEL: 'debug',
        SEGSERVE_DEADLINE_MS: '1500',
        SEGSERVE_DEFAULT_MODEL: 'b',
        SEGSERVE_MAX_MESSAGE_BYTES: '1048576',
        SEGSERVE_MEMORY_LIMIT_MB: '2048',
      },
      NOW,
    );
    expect(c).toMatchObject({
      host: '127.0.0.1',
      httpPort: 0,
      grpcPort: 9999,
      natsUrl: 'nats://127.0.0.1:4222',
      apiKeys: ['key-one-0123456789', 'key-two-0123456789'],
      logLevel: 'debug',
      deadlineMs: 1500,
      defaultModel: 'b',
      maxMessageBytes: 1048576,
      maxUploadBytes: 1048576 - DEFAULTS.envelopeBytes,
      memoryLimitBytes: 2048 * 1024 * 1024,
    });
  });

  it('defaults the default model to the only static model', () => {
    expect(loadConfig({ SEGSERVE_UPSTREAMS: 'tiny-seg=ipv4:127.0.0.1:1' }).defaultModel).toBe('tiny-seg');
  });

  it('ignores variables of other services, NATS alone is enough', () => {
    expect(() => loadConfig({ SEGSERVE_NATS_URL: 'nats://127.0.0.1:4222', SEGSERVE_MAX_QUEUE: '3', SEGSERVE_POLICY: 'x' })).not.toThrow();
  });

  it.each([
    [{ ...base, SEGSERVE_UPSTREAM: 'x' }, 'SEGSERVE_UPSTREAM'],
    [{}, 'SEGSERVE_UPSTREAMS'],
    [{ SEGSERVE_UPSTREAMS: 'Bad=ipv4:127.0.0.1:1' }, 'SEGSERVE_UPSTREAMS'],
    [{ ...base, SEGSERVE_HTTP_PORT: '80a' }, 'SEGSERVE_HTTP_PORT'],
    [{ ...base, SEGSERVE_GRPC_PORT: '70000' }, 'SEGSERVE_GRPC_PORT'],
    [{ ...base, SEGSERVE_DEADLINE_MS: '0' }, 'SEGSERVE_DEADLINE_MS'],
    [{ ...base, SEGSERVE_LOG_LEVEL: 'loud' }, 'SEGSERVE_LOG_LEVEL'],
    [{ ...base, SEGSERVE_DEFAULT_MODEL: '../x' }, 'SEGSERVE_DEFAULT_MODEL'],
    [{ ...base, SEGSERVE_NATS_URL: 'http://x' }, 'SEGSERVE_NATS_URL'],
    [{ ...base, SEGSERVE_API_KEYS: 'short' }, 'SEGSERVE_API_KEYS'],
    [{ ...base, SEGSERVE_HOST: 'a host' }, 'SEGSERVE_HOST'],
  ])('fails naming the variable %#', (env, variable) => {
    const load = (): unknown => loadConfig(env);
    expect(load).toThrow(ConfigError);
    expect(load).toThrow(expect.objectContaining({ variable, message: expect.stringContaining(variable) }) as Error);
  });

  it('never puts a key into an error message', () => {
    expect(() => loadConfig({ ...base, SEGSERVE_API_KEYS: 'good-key-0123456789,sh0rt' })).toThrow(/key #2/);
    try {
      loadConfig({ ...base, SEGSERVE_API_KEYS: 'good-key-0123456789,sh0rt' });
    } catch (err) {
      expect(String(err)).not.toContain('sh0rt');
    }
  });
});
