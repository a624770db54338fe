// The Kubernetes rollout driver (docs/architecture.md#rollout-drivers) through @kubernetes/client-node: one
// Deployment per track, `inference-<model>-stable|canary`, whose container `inference` loads
// the version named by SEGSERVE_MODEL_VERSION / SEGSERVE_MODEL_SHA256 from the object store.
//
// - Changes are strategic-merge patches that carry the resourceVersion read just before, so a
//   concurrent writer (an HPA, kubectl) makes the API server answer 409; we re-read and retry,
//   a bounded number of times (docs/reliability.md item 33).
// - Readiness is `kubectl rollout status`: the controller observed the generation, every
//   replica is updated and available, no old ones left; `ProgressDeadlineExceeded` is failed.
// - Kubernetes has no server-side undo: a rollback re-applies the previous version's env.
// - The stable's replica count belongs to its HPA; only the canary is scaled here.
// RBAC: get/patch on these Deployments only (deploy/k8s/base/promoter/rbac.yaml).
import { readFile } from 'node:fs/promises';
import { AppsV1Api, KubeConfig, PatchStrategy, setHeaderOptions, type V1Container, type V1Deployment } from '@kubernetes/client-node';
import type { Track } from '@segserve/proto';
import type { Logger, ModelDeployer, ModelRef, Readiness } from '../domain/ports.js';

export interface KubernetesDeployerOptions {
  readonly apps: AppsV1Api;
  readonly namespace: string;
  readonly log: Logger;
  /** Replicas of a deployed canary (default 1). */
  readonly canaryReplicas?: number;
  /** Name of the inference container in the pod template (default `inference`). */
  readonly container?: string;
  /** Attempts of a patch that keeps hitting 409 Conflict (default 5). */
  readonly maxAttempts?: number;
  readonly grpcPort?: number;
}

const SERVICE_ACCOUNT_NAMESPACE = '/var/run/secrets/kubernetes.io/serviceaccount/namespace';

export class KubernetesConflictError extends Error {
  constructor(
    readonly deployment: string,
    readonly attempts: number,
  ) {
    super(`deployment ${deployment}: still conflicting after ${attempts} attempts (409); will retry on the next tick`);
    this.name = 'KubernetesConflictError';
  }
}

function statusCode(err: unknown): number | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'number' ? code : undefined;
}

function envValue(c: V1Container | undefined, name: string): string | undefined {
  return c?.env?.find((e) => e.name === name)?.value;
}

export class KubernetesDeployer implements ModelDeployer {
  private readonly container: string;

  constructor(private readonly options: KubernetesDeployerOptions) {
    this.container = options.container ?? 'inference';
  }

  /** In-cluster service account, else the kubeconfig (KUBECONFIG or ~/.kube/config). */
  static async fromEnvironment(options: { log: Logger; canaryReplicas?: number }): Promise<KubernetesDeployer> {
    const kc = new KubeConfig();
    kc.loadFromDefault();
    const inCluster = await readFile(SERVICE_ACCOUNT_NAMESPACE, 'utf8').then((s) => s.trim(), () => undefined);
    return KubernetesDeployer.fromKubeConfig(kc, { ...options, ...(inCluster ? { namespace: inCluster } : {}) });
  }

  static fromKubeConfig(kc: KubeConfig, options: { log: Logger; namespace?: string; canaryReplicas?: number; maxAttempts?: number }): KubernetesDeployer {
    const namespace = options.namespace ?? kc.getContextObject(kc.getCurrentContext())?.namespace ?? 'default';
    return new KubernetesDeployer({ apps: kc.makeApiClient(AppsV1Api), namespace, log: options.log, ...(options.canaryReplicas ? { canaryReplicas: options.canaryReplicas } : {}), ...(options.maxAttempts ? { maxAttempts: options.maxAttempts } : {}) });
  }

  deploymentName(model: string, track: Track): string {
    return `inference-${model}-${track}`;
  }

  target(model: string, track: Track): string {
    return `dns:///${this.deploymentName(model, track)}.${this.options.namespace}.svc:${this.options.grpcPort ?? 50051}`;
  }

  deployCanary(ref: ModelRef): Promise<void> {
    return this.apply(ref.model, 'canary', { ref, replicas: this.options.canaryReplicas ?? 1 });
  }

  deployStable(ref: ModelRef): Promise<void> {
    return this.apply(ref.model, 'stable', { ref });
  }

  removeCanary(model: string): Promise<void> {
    return this.apply(model, 'canary', { replicas: 0 });
  }

  async readiness(model: string, track: Track): Promise<Readiness> {
    const name = this.deploymentName(model, track);
    let d: V1Deployment;
    try {
      d = await this.read(name);
    } catch (err) {
      if (statusCode(err) === 404) return { state: 'failed', reason: `deployment ${name} not found in namespace ${this.options.namespace}` };
      throw err;
    }
    return rolloutStatus(d, this.target(model, track));
  }

  close(): Promise<void> {
    return Promise.resolve();
  }

  private read(name: string): Promise<V1Deployment> {
    return this.options.apps.readNamespacedDeployment({ name, namespace: this.options.namespace });
  }

  /** Read → compute the patch → patch with that resourceVersion; on 409 read again (bounded). */
  private async apply(model: string, track: Track, want: { ref?: ModelRef; replicas?: number }): Promise<void> {
    const name = this.deploymentName(model, track);
    const attempts = this.options.maxAttempts ?? 5;
    for (let attempt = 1; attempt <= attempts; attempt++) {
      const d = await this.read(name);
      const containers = d.spec?.template.spec?.containers ?? [];
      const c = containers.find((x) => x.name === this.container);
      if (!c) throw new Error(`deployment ${name} has no container '${this.container}'`);
      const envChange = want.ref && (envValue(c, 'SEGSERVE_MODEL_VERSION') !== want.ref.version || envValue(c, 'SEGSERVE_MODEL_SHA256') !== want.ref.sha256);
      const replicasChange = want.replicas !== undefined && d.spec?.replicas !== want.replicas;
      if (!envChange && !replicasChange) return;
      const body = {
        metadata: { resourceVersion: d.metadata?.resourceVersion, annotations: want.ref ? { 'segserve.io/model-version': want.ref.version } : {} },
        spec: {
          ...(replicasChange ? { replicas: want.replicas } : {}),
          ...(envChange && want.ref
            ? {
                template: {
                  spec: {
                    containers: [{ name: this.container, env: [{ name: 'SEGSERVE_MODEL_VERSION', value: want.ref.version }, { name: 'SEGSERVE_MODEL_SHA256', value: want.ref.sha256 }] }],
                  },
                },
              }
            : {}),
        },
      };
      try {
        await this.options.apps.patchNamespacedDeployment({ name, namespace: this.options.namespace, body, fieldManager: 'segserve-promoter' }, setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch));
        this.options.log.info('patched deployment', { deployment: name, version: want.ref?.version, replicas: want.replicas, attempt });
        return;
      } catch (err) {
        if (statusCode(err) !== 409) throw err;
        this.options.log.info('deployment changed under us (409); reading it again', { deployment: name, attempt });
        await new Promise((r) => setTimeout(r, 100 * attempt));
      }
    }
    throw new KubernetesConflictError(name, attempts);
  }
}

/** `kubectl rollout status` for one Deployment, as a Readiness. */
export function rolloutStatus(d: V1Deployment, target: string): Readiness {
  const name = d.metadata?.name ?? '?';
  const progressing = d.status?.conditions?.find((c) => c.type === 'Progressing');
  if (progressing?.reason === 'ProgressDeadlineExceeded') return { state: 'failed', reason: `deployment ${name}: ProgressDeadlineExceeded (${progressing.message ?? 'no progress'})` };
  const want = d.spec?.replicas ?? 1;
  if (want === 0) return { state: 'failed', reason: `deployment ${name} is scaled to zero` };
  const generation = d.metadata?.generation ?? 0;
  const observed = d.status?.observedGeneration ?? 0;
  if (observed < generation) return { state: 'progressing', detail: `waiting for the deployment controller (generation ${generation}, observed ${observed})` };
  const updated = d.status?.updatedReplicas ?? 0;
  const total = d.status?.replicas ?? 0;
  const available = d.status?.availableReplicas ?? 0;
  if (updated < want) return { state: 'progressing', detail: `${updated} of ${want} replicas updated` };
  if (total > updated) return { state: 'progressing', detail: `${total - updated} old replicas pending termination` };
  if (available < updated) return { state: 'progressing', detail: `${available} of ${updated} updated replicas available` };
  return { state: 'ready', target };
}
