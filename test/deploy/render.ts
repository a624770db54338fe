// Renders the kustomize overlays with the real `kubectl kustomize` and validates every object
// against the Kubernetes OpenAPI schemas shipped by `kubernetes-models` (and the Prometheus
// Operator CRD schemas of `@kubernetes-models/prometheus-operator`), offline.
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { parseAllDocuments } from 'yaml';
import * as coreV1 from 'kubernetes-models/v1';
import * as appsV1 from 'kubernetes-models/apps/v1';
import * as autoscalingV2 from 'kubernetes-models/autoscaling/v2';
import * as policyV1 from 'kubernetes-models/policy/v1';
import * as networkingV1 from 'kubernetes-models/networking.k8s.io/v1';
import * as rbacV1 from 'kubernetes-models/rbac.authorization.k8s.io/v1';
import * as monitoringV1 from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1';
import { REPO_ROOT, requireBinary } from '../helpers/process.js';

export const KUBECTL_INSTALL_HINT =
  'the Kubernetes release binary (kubectl ≥ 1.27 includes kustomize): curl -LO https://dl.k8s.io/release/v1.32.4/bin/linux/amd64/kubectl && install -m 0755 kubectl /usr/local/bin/kubectl — Debian has no kubectl package';

export const KUSTOMIZE_DIRS = {
  base: path.join(REPO_ROOT, 'deploy', 'k8s', 'base'),
  dev: path.join(REPO_ROOT, 'deploy', 'k8s', 'overlays', 'dev'),
  prod: path.join(REPO_ROOT, 'deploy', 'k8s', 'overlays', 'prod'),
} as const;
export type Overlay = keyof typeof KUSTOMIZE_DIRS;

// Rendered manifests are free-form JSON; the policy checks read them through this shape.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Json = any;

export interface K8sObject {
  readonly apiVersion: string;
  readonly kind: string;
  readonly metadata: { readonly name: string; readonly namespace?: string; readonly labels?: Record<string, string>; readonly annotations?: Record<string, string> };
  readonly spec?: Json;
  readonly data?: Record<string, string>;
  readonly [key: string]: Json;
}

/** `kubectl kustomize <dir>` → the objects. Fails with the install command if kubectl is missing. */
export function kustomize(overlay: Overlay): K8sObject[] {
  const kubectl = requireBinary('kubectl', KUBECTL_INSTALL_HINT);
  let out: string;
  try {
    out = execFileSync(kubectl, ['kustomize', KUSTOMIZE_DIRS[overlay]], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    // Debian's kubernetes-client (1.20, kustomize v2) is too old for `labels:` and `patches:`.
    const stderr = (err as { stderr?: string }).stderr ?? String(err);
    throw new Error(`kubectl kustomize ${KUSTOMIZE_DIRS[overlay]} failed (kubectl ≥ 1.27 needed; install ${KUBECTL_INSTALL_HINT}):\n${stderr}`);
  }
  return parseAllDocuments(out)
    .map((d) => d.toJS() as K8sObject | null)
    .filter((o): o is K8sObject => o !== null);
}

export const byKind = (objects: readonly K8sObject[], kind: string): K8sObject[] => objects.filter((o) => o.kind === kind);

export function find(objects: readonly K8sObject[], kind: string, name: string): K8sObject {
  const o = objects.find((x) => x.kind === kind && x.metadata.name === name);
  if (!o) throw new Error(`no ${kind} ${name} in the rendered manifests`);
  return o;
}

type ValidateFn = (this: unknown) => void;
type Models = Readonly<Record<string, unknown>>;

/** The API groups segserve uses; an object of any other apiVersion fails validation. */
const SCHEMAS: Readonly<Record<string, Models>> = {
  v1: coreV1,
  'apps/v1': appsV1,
  'autoscaling/v2': autoscalingV2,
  'policy/v1': policyV1,
  'networking.k8s.io/v1': networkingV1,
  'rbac.authorization.k8s.io/v1': rbacV1,
  'monitoring.coreos.com/v1': monitoringV1,
};

function validatorFor(apiVersion: string, kind: string): ValidateFn {
  const model = SCHEMAS[apiVersion]?.[kind] as { prototype: { validate: ValidateFn } } | undefined;
  if (!model) throw new Error(`no schema for ${apiVersion} ${kind} (not an API segserve is meant to use)`);
  return model.prototype.validate;
}

/** Wraps `value` so that every property read is recorded as a path in `seen`. */
function tracked(value: Json, at: string, seen: Set<string>): Json {
  if (value === null || typeof value !== 'object') return value;
  const copy = Array.isArray(value)
    ? value.map((v, i) => tracked(v, `${at}[${i}]`, seen))
    : Object.fromEntries(Object.entries(value).map(([k, v]) => [k, tracked(v, `${at}.${k}`, seen)]));
  return new Proxy(copy, {
    get(target, key, receiver) {
      if (typeof key === 'string') seen.add(`${at}.${key}`);
      return Reflect.get(target, key, receiver) as unknown;
    },
  });
}

function unread(value: Json, at: string, seen: ReadonlySet<string>, out: string[]): void {
  if (value === null || typeof value !== 'object') return;
  if (Array.isArray(value)) {
    value.forEach((v, i) => unread(v, `${at}[${i}]`, seen, out));
    return;
  }
  for (const [k, v] of Object.entries(value)) {
    if (!seen.has(`${at}.${k}`)) out.push(`${at}.${k}`);
    else unread(v, `${at}.${k}`, seen, out);
  }
}

/**
 * Schema errors of one object: types, required fields, enums and formats (the compiled
 * OpenAPI validator), plus fields the schema does not know. The OpenAPI schemas do not forbid
 * unknown properties, but their compiled validators read every property they define — so a
 * field the validator never read (`livenesProbe`) is one the API server would drop.
 */
export function schemaErrors(object: K8sObject): string[] {
  const validate = validatorFor(object.apiVersion, object.kind);
  const seen = new Set<string>();
  const errors: string[] = [];
  try {
    validate.call(tracked(object, '', seen));
  } catch (err) {
    errors.push(err instanceof Error ? err.message : String(err));
  }
  const unknown: string[] = [];
  unread(object, '', seen, unknown);
  errors.push(...unknown.map((p) => `unknown field ${p}`));
  return errors.map((e) => `${object.kind}/${object.metadata.name}: ${e}`);
}
