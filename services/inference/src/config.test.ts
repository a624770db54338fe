import { describe, expect, it } from 'vitest';
import { applyFlags, parseConfig, type InferenceConfig } from './config.js';

const system = { cpuLimit: 2, tmpDir: '/tmp' };
const base = { SEGSERVE_MODEL_DIR: '/models/m/1' };

describe('parseConfig', () => {
  it('has the documented defaults', () => {
    const c = parseConfig(base, system);
    expect(c).toMatchObject({
      host: '0.0.0.0',
      grpcPort: 50051,
      metricsPort: 9100,
      model: { kind: 'directory', dir: '/models/m/1', sha256: undefined },
      maxConcurrency: 2,
      maxQueue: 16,
      queueTimeoutMs: 10_000,
      maxInputPixels: 24_000_000,
      maxMessageBytes: 32 * 1024 * 1024,
      shutdownGraceMs: 20_000,
      // Two requests inside (one decodes while the other runs), one session with both CPUs.
      ort: { sessions: 1, intraOpThreads: 2, interOpThreads: 1, arena: 'auto', memPattern: true },
      logLevel: 'info',
      fault: { delayMs: 0, errorRatio: 0 },
    } satisfies Partial<Record<keyof InferenceConfig, unknown>>);
    expect(Object.isFrozen(c)).toBe(true);
    expect(Object.isFrozen(c.ort)).toBe(true);
  });

  it.each<[string, Record<string, string>, Partial<Record<string, unknown>>]>([
    ['port 0 means pick one', { SEGSERVE_GRPC_PORT: '0', SEGSERVE_METRICS_PORT: '0' }, { grpcPort: 0, metricsPort: 0 }],
    ['one request inside at a time', { SEGSERVE_MAX_CONCURRENCY: '1' }, { maxConcurrency: 1, ort: { sessions: 1, intraOpThreads: 2, interOpThreads: 1, arena: 'auto', memPattern: true } }],
    ['two sessions share the CPUs', { SEGSERVE_ORT_SESSIONS: '2' }, { maxConcurrency: 2, ort: { sessions: 2, intraOpThreads: 1 } }],
    ['no more sessions than requests inside', { SEGSERVE_MAX_CONCURRENCY: '1', SEGSERVE_ORT_SESSIONS: '4' }, { maxConcurrency: 1, ort: { sessions: 1, intraOpThreads: 2 } }],
    ['explicit threads and arena', { SEGSERVE_INTRA_OP_THREADS: '3', SEGSERVE_ORT_ARENA: 'true', SEGSERVE_ORT_MEM_PATTERN: '0' }, { ort: { sessions: 1, intraOpThreads: 3, interOpThreads: 1, arena: 'on', memPattern: false } }],
    ['arena off', { SEGSERVE_ORT_ARENA: 'off' }, { ort: { arena: 'off' } }],
    ['arena auto, any case', { SEGSERVE_ORT_ARENA: 'AUTO' }, { ort: { arena: 'auto' } }],
    ['spinning intra-op threads', { SEGSERVE_ORT_SPINNING: 'true' }, { ort: { spinning: true } }],
    ['fault injection', { SEGSERVE_FAULT_DELAY_MS: '250', SEGSERVE_FAULT_ERROR_RATIO: '0.5' }, { fault: { delayMs: 250, errorRatio: 0.5 } }],
    ['log level any case', { SEGSERVE_LOG_LEVEL: 'DEBUG' }, { logLevel: 'debug' }],
    ['empty value = unset', { SEGSERVE_MAX_QUEUE: '' }, { maxQueue: 16 }],
    ['digest pin for a directory', { SEGSERVE_MODEL_SHA256: 'A'.repeat(64) }, { model: { kind: 'directory', dir: '/models/m/1', sha256: 'a'.repeat(64) } }],
    ['variables of other services are fine', { SEGSERVE_UPSTREAMS: 'x', SEGSERVE_POLICY: 'p.yaml' }, { grpcPort: 50051 }],
  ])('%s', (_name, env, expected) => {
    expect(parseConfig({ ...base, ...env }, system)).toMatchObject(expected);
  });

  it('reads an object-store source when no directory is given', () => {
    const c = parseConfig({ SEGSERVE_NATS_URL: 'nats://127.0.0.1:4222', SEGSERVE_MODEL_NAME: 'facade-ads', SEGSERVE_MODEL_VERSION: '2' }, system);
    expect(c.model).toEqual({ kind: 'nats', url: 'nats://127.0.0.1:4222', name: 'facade-ads', version: '2', sha256: undefined, cacheDir: '/tmp/segserve-models' });
  });

  it('defaults concurrency to the CPU limit', () => {
    expect(parseConfig(base, { cpuLimit: 4, tmpDir: '/tmp' }).maxConcurrency).toBe(4);
    expect(parseConfig(base, { cpuLimit: 0.5, tmpDir: '/tmp' }).maxConcurrency).toBe(1);
  });

  it.each<[string, Record<string, string | undefined>, RegExp]>([
    ['a typo', { ...base, SEGSERVE_MAX_CONCURENCY: '2' }, /SEGSERVE_MAX_CONCURENCY: unknown variable/],
    ['no model', {}, /no model: set SEGSERVE_MODEL_DIR/],
    ['bad port', { ...base, SEGSERVE_GRPC_PORT: '70000' }, /SEGSERVE_GRPC_PORT: 70000 is outside 0–65535/],
    ['not a number', { ...base, SEGSERVE_MAX_QUEUE: 'ten' }, /SEGSERVE_MAX_QUEUE: 'ten' is not a whole number/],
    ['zero concurrency', { ...base, SEGSERVE_MAX_CONCURRENCY: '0' }, /SEGSERVE_MAX_CONCURRENCY: 0 is outside/],
    ['bad boolean', { ...base, SEGSERVE_ORT_ARENA: 'maybe' }, /SEGSERVE_ORT_ARENA: 'maybe' is neither auto nor a boolean/],
    ['bad ratio', { ...base, SEGSERVE_FAULT_ERROR_RATIO: '1.5' }, /SEGSERVE_FAULT_ERROR_RATIO/],
    ['bad level', { ...base, SEGSERVE_LOG_LEVEL: 'loud' }, /SEGSERVE_LOG_LEVEL: 'loud'/],
    ['bad digest', { ...base, SEGSERVE_MODEL_SHA256: 'abc' }, /SEGSERVE_MODEL_SHA256: not a hex sha256/],
    ['path-trick model name', { SEGSERVE_NATS_URL: 'nats://x', SEGSERVE_MODEL_NAME: '../x', SEGSERVE_MODEL_VERSION: '1' }, /SEGSERVE_MODEL_NAME: '..\/x'/],
    ['path-trick version', { SEGSERVE_NATS_URL: 'nats://x', SEGSERVE_MODEL_NAME: 'x', SEGSERVE_MODEL_VERSION: '../1' }, /SEGSERVE_MODEL_VERSION/],
  ])('fails on %s, naming the variable', (_name, env, message) => {
    expect(() => parseConfig(env, system)).toThrow(message);
  });
});

describe('applyFlags', () => {
  it.each<[string[], Record<string, string>]>([
    [['--model', 'models/x/1'], { SEGSERVE_MODEL_DIR: 'models/x/1' }],
    [['--grpc-port=0', '--metrics-port', '0'], { SEGSERVE_GRPC_PORT: '0', SEGSERVE_METRICS_PORT: '0' }],
  ])('%j', (argv, expected) => {
    expect(applyFlags({ SEGSERVE_MODEL_DIR: 'env-dir' }, argv)).toMatchObject(expected);
  });

  it('flags override the environment', () => {
    expect(applyFlags({ SEGSERVE_GRPC_PORT: '1' }, ['--grpc-port', '2'])['SEGSERVE_GRPC_PORT']).toBe('2');
  });

  it.each([
    [['--modle', 'x'], /--modle: unknown option/],
    [['--model'], /--model: needs a value/],
  ])('rejects %j', (argv, message) => {
    expect(() => applyFlags({}, argv)).toThrow(message);
  });
});
