import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfig } from './config.js';

const repoRoot = '/repo';
const parse = (env: Record<string, string>) => parseConfig(env, { repoRoot });
const SIGNER = 'UDXU4RCSJNZOIQHZNWXHXORDPRTGNJAHAHFRGZNEEJCPQTT2M7NLCNF4';

describe('parseConfig', () => {
  it('has defaults for everything but the NATS URL', () => {
    expect(parse({})).toEqual({
      natsUrl: null,
      policyPath: path.join(repoRoot, 'services/promoter/policies'),
      deployer: 'local',
      prometheusUrl: null,
      metricsPort: 9102,
      logLevel: 'info',
      signers: [],
      goldenRoot: path.join(repoRoot, 'models'),
      modelRoots: [path.join(repoRoot, 'models')],
      initialStable: [],
      localVersionEnv: {},
      repoRoot,
    });
    expect(Object.isFrozen(parse({}))).toBe(true);
  });

  it('reads every variable it knows', () => {
    const c = parse({
      SEGSERVE_NATS_URL: 'nats://promoter:secret@nats:4222,nats://nats-2:4222',
      SEGSERVE_POLICY: '/etc/segserve/policies',
      SEGSERVE_DEPLOYER: 'kubernetes',
      SEGSERVE_PROMETHEUS_URL: 'http://prometheus:9090',
      SEGSERVE_METRICS_PORT: '0',
      SEGSERVE_LOG_LEVEL: 'DEBUG',
      SEGSERVE_SIGNERS: `${SIGNER}, ${SIGNER}`,
      SEGSERVE_GOLDEN_ROOT: '/data/models',
      SEGSERVE_MODEL_ROOTS: '/a,/b',
      SEGSERVE_INITIAL_STABLE: '/repo/models/facade-ads/2',
      SEGSERVE_LOCAL_VERSION_ENV: '{"4": {"SEGSERVE_FAULT_DELAY_MS": "300"}}',
      // Another service's variable in the same environment is fine.
      SEGSERVE_HTTP_PORT: '8080',
    });
    expect(c).toMatchObject({ deployer: 'kubernetes', metricsPort: 0, logLevel: 'debug', modelRoots: ['/a', '/b'], initialStable: ['/repo/models/facade-ads/2'], localVersionEnv: { '4': { SEGSERVE_FAULT_DELAY_MS: '300' } } });
    expect(c.signers).toHaveLength(2);
  });

  const bad: [string, Record<string, string>, string][] = [
    ['a typo', { SEGSERVE_DEPLOYR: 'local' }, 'SEGSERVE_DEPLOYR'],
    ['an unknown deployer', { SEGSERVE_DEPLOYER: 'docker' }, 'SEGSERVE_DEPLOYER'],
    ['a port out of range', { SEGSERVE_METRICS_PORT: '70000' }, 'SEGSERVE_METRICS_PORT'],
    ['a port that is not a number', { SEGSERVE_METRICS_PORT: 'x' }, 'SEGSERVE_METRICS_PORT'],
    ['an http NATS URL', { SEGSERVE_NATS_URL: 'http://nats:4222' }, 'SEGSERVE_NATS_URL'],
    ['a Prometheus URL without scheme', { SEGSERVE_PROMETHEUS_URL: 'prometheus:9090' }, 'SEGSERVE_PROMETHEUS_URL'],
    ['a log level', { SEGSERVE_LOG_LEVEL: 'loud' }, 'SEGSERVE_LOG_LEVEL'],
    ['a signer that is not a public key', { SEGSERVE_SIGNERS: 'SUAB' }, 'SEGSERVE_SIGNERS'],
    ['an initial stable that is not <model>/<version>', { SEGSERVE_INITIAL_STABLE: '/' }, 'SEGSERVE_INITIAL_STABLE'],
    ['version env that is not JSON', { SEGSERVE_LOCAL_VERSION_ENV: '{' }, 'SEGSERVE_LOCAL_VERSION_ENV'],
    ['version env with a non-string value', { SEGSERVE_LOCAL_VERSION_ENV: '{"1": {"X": 1}}' }, 'SEGSERVE_LOCAL_VERSION_ENV'],
  ];
  it.each(bad)('rejects %s, naming the variable', (_name, env, variable) => {
    expect(() => parse(env)).toThrow(ConfigError);
    expect(() => parse(env)).toThrow(new RegExp(`^${variable}: `));
  });

  it('never echoes NATS credentials in an error', () => {
    expect(() => parse({ SEGSERVE_NATS_URL: 'http://user:hunter2@nats:4222' })).toThrow(/\*\*\*@/);
    expect(() => parse({ SEGSERVE_NATS_URL: 'http://user:hunter2@nats:4222' })).not.toThrow(/hunter2/);
  });
});
