// The promoter's configuration: environment → one frozen, validated object (STYLE.md
// "Configuration"). Unknown SEGSERVE_* names are typos and fail start-up naming the variable;
// names that other segserve services use are ignored (one environment serves a whole stack).
import path from 'node:path';
import { isValidModelName, parseNatsUrl, unknownSegserveVars } from '@segserve/proto';
import { parseSigners } from './adapters/signing.js';
import { isLogLevel, type LogLevel } from '@segserve/runtime';

export type DeployerKind = 'local' | 'kubernetes';

export interface PromoterConfig {
  /** SEGSERVE_NATS_URL: required by every command of this package except `stack`. */
  readonly natsUrl: string | null;
  /** SEGSERVE_POLICY: a policy file, or a directory of `<model>.yaml|json` files. */
  readonly policyPath: string;
  /** SEGSERVE_DEPLOYER (local). */
  readonly deployer: DeployerKind;
  /** SEGSERVE_PROMETHEUS_URL: canary figures from Prometheus; unset = scrape the processes. */
  readonly prometheusUrl: string | null;
  /** SEGSERVE_METRICS_PORT (9102; 0 = any free port, logged). */
  readonly metricsPort: number;
  /** SEGSERVE_LOG_LEVEL (info). */
  readonly logLevel: LogLevel;
  /** SEGSERVE_SIGNERS: public nkeys (`U…`) whose results the intake accepts. */
  readonly signers: readonly string[];
  /** SEGSERVE_GOLDEN_ROOT: `<model>/golden/{images,masks}` (the repository's models/). */
  readonly goldenRoot: string;
  /** SEGSERVE_MODEL_ROOTS: where the local driver finds `<model>/<version>/` on disk (models/). */
  readonly modelRoots: readonly string[];
  /** SEGSERVE_INITIAL_STABLE: model directories served as stable when a model has no state yet. */
  readonly initialStable: readonly string[];
  /** SEGSERVE_LOCAL_VERSION_ENV (TEST ONLY): JSON {version: {VAR: value}} for the local driver. */
  readonly localVersionEnv: Readonly<Record<string, Readonly<Record<string, string>>>>;
  readonly repoRoot: string;
}

/** The variables this package reads (each also listed in proto's SEGSERVE_ENV_VARS). */
export const PROMOTER_VARS = [
  'SEGSERVE_NATS_URL',
  'SEGSERVE_POLICY',
  'SEGSERVE_DEPLOYER',
  'SEGSERVE_PROMETHEUS_URL',
  'SEGSERVE_METRICS_PORT',
  'SEGSERVE_LOG_LEVEL',
  'SEGSERVE_SIGNERS',
  'SEGSERVE_GOLDEN_ROOT',
  'SEGSERVE_MODEL_ROOTS',
  'SEGSERVE_INITIAL_STABLE',
  'SEGSERVE_LOCAL_VERSION_ENV',
] as const;

export class ConfigError extends Error {
  constructor(
    readonly variable: string,
    message: string,
  ) {
    super(`${variable}: ${message}`);
    this.name = 'ConfigError';
  }
}

type Env = Readonly<Record<string, string | undefined>>;

function read(env: Env, name: string): string | undefined {
  const v = env[name]?.trim();
  return v === undefined || v === '' ? undefined : v;
}

function list(env: Env, name: string): string[] {
  // Comma-separated; paths may not contain commas.
  return (read(env, name) ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

function port(env: Env, name: string, fallback: number): number {
  const v = read(env, name);
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!/^\d+$/.test(v) || n > 65535) throw new ConfigError(name, `'${v}' is not a port (0–65535)`);
  return n;
}

function url(env: Env, name: string, schemes: readonly string[]): string | null {
  const v = read(env, name);
  if (v === undefined) return null;
  let parsed: URL;
  try {
    parsed = new URL(v);
  } catch {
    throw new ConfigError(name, `'${v}' is not a URL`);
  }
  if (!schemes.includes(parsed.protocol.replace(/:$/, ''))) throw new ConfigError(name, `'${v}' must start with ${schemes.map((s) => `${s}://`).join(' or ')}`);
  return v;
}

function natsUrl(env: Env): string | null {
  const v = read(env, 'SEGSERVE_NATS_URL');
  if (v === undefined) return null;
  try {
    const { servers } = parseNatsUrl(v);
    if (servers.some((srv) => !/^(nats|tls|ws|wss):\/\//.test(srv))) throw new Error('scheme');
  } catch {
    throw new ConfigError('SEGSERVE_NATS_URL', `'${v.replace(/\/\/[^@/]*@/, '//***@')}' is not a NATS URL (nats://host:4222[,nats://…])`);
  }
  return v;
}

function versionEnv(env: Env): PromoterConfig['localVersionEnv'] {
  const v = read(env, 'SEGSERVE_LOCAL_VERSION_ENV');
  if (v === undefined) return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(v);
  } catch {
    throw new ConfigError('SEGSERVE_LOCAL_VERSION_ENV', 'not JSON');
  }
  const ok =
    typeof parsed === 'object' &&
    parsed !== null &&
    Object.values(parsed).every((vars) => typeof vars === 'object' && vars !== null && Object.values(vars as object).every((x) => typeof x === 'string'));
  if (!ok) throw new ConfigError('SEGSERVE_LOCAL_VERSION_ENV', 'expected {"<version>": {"VARIABLE": "value"}}');
  return parsed as PromoterConfig['localVersionEnv'];
}

export function parseConfig(env: Env, options: { readonly repoRoot: string }): PromoterConfig {
  const unknown = unknownSegserveVars(env);
  if (unknown.length > 0) throw new ConfigError(unknown[0] as string, `unknown variable (a typo?); known: see proto/src/env.ts`);
  const deployer = read(env, 'SEGSERVE_DEPLOYER') ?? 'local';
  if (deployer !== 'local' && deployer !== 'kubernetes') throw new ConfigError('SEGSERVE_DEPLOYER', `'${deployer}' is neither local nor kubernetes`);
  const logLevel = (read(env, 'SEGSERVE_LOG_LEVEL') ?? 'info').toLowerCase();
  if (!isLogLevel(logLevel)) throw new ConfigError('SEGSERVE_LOG_LEVEL', `'${logLevel}' is not debug, info, warn or error`);
  const initialStable = list(env, 'SEGSERVE_INITIAL_STABLE').map((d) => path.resolve(d));
  for (const dir of initialStable) {
    const model = path.basename(path.dirname(dir));
    if (!isValidModelName(model)) throw new ConfigError('SEGSERVE_INITIAL_STABLE', `'${dir}' is not a <model>/<version> directory`);
  }
  let signers: string[];
  try {
    signers = parseSigners(read(env, 'SEGSERVE_SIGNERS') ?? '');
  } catch (err) {
    throw new ConfigError('SEGSERVE_SIGNERS', err instanceof Error ? err.message : String(err));
  }
  const modelRoots = list(env, 'SEGSERVE_MODEL_ROOTS').map((d) => path.resolve(d));
  return Object.freeze({
    natsUrl: natsUrl(env),
    policyPath: path.resolve(read(env, 'SEGSERVE_POLICY') ?? path.join(options.repoRoot, 'services', 'promoter', 'policies')),
    deployer,
    prometheusUrl: url(env, 'SEGSERVE_PROMETHEUS_URL', ['http', 'https']),
    metricsPort: port(env, 'SEGSERVE_METRICS_PORT', 9102),
    logLevel,
    signers: Object.freeze(signers),
    goldenRoot: path.resolve(read(env, 'SEGSERVE_GOLDEN_ROOT') ?? path.join(options.repoRoot, 'models')),
    modelRoots: Object.freeze(modelRoots.length ? modelRoots : [path.join(options.repoRoot, 'models')]),
    initialStable: Object.freeze(initialStable),
    localVersionEnv: versionEnv(env),
    repoRoot: options.repoRoot,
  });
}
