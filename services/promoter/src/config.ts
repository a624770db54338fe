// The promoter's configuration: environment → one frozen, validated object
// (docs/architecture.md#conventions). Unknown SEGSERVE_* names are typos and fail start-up naming the variable;
// names that other segserve services use are ignored (one environment serves a whole stack).
import path from 'node:path';
import { isValidModelName } from '@segserve/proto';
import { checkUnknownVars, ConfigError, enumVar, listVar, logLevelVar, natsUrlVar, portVar, readVar, urlVar, type Env, type LogLevel } from '@segserve/runtime';
import { parseSigners } from './adapters/signing.js';

export { ConfigError };

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

function versionEnv(env: Env): PromoterConfig['localVersionEnv'] {
  const v = readVar(env, 'SEGSERVE_LOCAL_VERSION_ENV');
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
  checkUnknownVars(env);
  const initialStable = listVar(env, 'SEGSERVE_INITIAL_STABLE').map((d) => path.resolve(d));
  for (const dir of initialStable) {
    const model = path.basename(path.dirname(dir));
    if (!isValidModelName(model)) throw new ConfigError('SEGSERVE_INITIAL_STABLE', `'${dir}' is not a <model>/<version> directory`);
  }
  let signers: string[];
  try {
    signers = parseSigners(readVar(env, 'SEGSERVE_SIGNERS') ?? '');
  } catch (err) {
    throw new ConfigError('SEGSERVE_SIGNERS', err instanceof Error ? err.message : String(err));
  }
  const modelRoots = listVar(env, 'SEGSERVE_MODEL_ROOTS').map((d) => path.resolve(d));
  return Object.freeze({
    natsUrl: natsUrlVar(env) ?? null,
    policyPath: path.resolve(readVar(env, 'SEGSERVE_POLICY') ?? path.join(options.repoRoot, 'services', 'promoter', 'policies')),
    deployer: enumVar<DeployerKind>(env, 'SEGSERVE_DEPLOYER', ['local', 'kubernetes'], 'local'),
    prometheusUrl: urlVar(env, 'SEGSERVE_PROMETHEUS_URL', ['http', 'https']) ?? null,
    metricsPort: portVar(env, 'SEGSERVE_METRICS_PORT', 9102),
    logLevel: logLevelVar(env),
    signers: Object.freeze(signers),
    goldenRoot: path.resolve(readVar(env, 'SEGSERVE_GOLDEN_ROOT') ?? path.join(options.repoRoot, 'models')),
    modelRoots: Object.freeze(modelRoots.length ? modelRoots : [path.join(options.repoRoot, 'models')]),
    initialStable: Object.freeze(initialStable),
    localVersionEnv: versionEnv(env),
    repoRoot: options.repoRoot,
  });
}
