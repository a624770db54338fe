// The Kubernetes driver through the real @kubernetes/client-node against an HTTP server that
// speaks the Deployment REST paths and JSON (docs/architecture.md#tests): get, patch with resourceVersion,
// 409 conflicts (docs/reliability.md item 33), status progression, ProgressDeadlineExceeded — and one whole
// rollout driven by the controller through it.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { KubernetesConflictError, KubernetesDeployer } from '../../../services/promoter/src/adapters/kubernetes-deployer.js';
import type { ModelRef, Readiness } from '../../../services/promoter/src/domain/ports.js';
import { silentLogger } from '@segserve/runtime';
import { waitFor } from '../../helpers/process.js';
import { FakeKube } from './fake-kube.js';
import { runFastRollout } from './support.js';

const NS = 'segserve';
const ref = (version: string): ModelRef => ({ model: 'facade-ads', version, sha256: version.repeat(64).slice(0, 64) });
const STABLE = 'inference-facade-ads-stable';
const CANARY = 'inference-facade-ads-canary';

let kube: FakeKube;
let url: string;
let deployer: KubernetesDeployer;

function client(url: string, maxAttempts?: number): KubernetesDeployer {
  return KubernetesDeployer.fromKubeConfig(kube.kubeConfig(url), { log: silentLogger, ...(maxAttempts ? { maxAttempts } : {}) });
}

beforeEach(async () => {
  kube = new FakeKube(NS);
  kube.add(STABLE, '3', 2);
  kube.add(CANARY, '3', 0);
  url = await kube.start();
  deployer = client(url);
});

afterEach(() => kube.stop());

async function settle(track: 'stable' | 'canary'): Promise<{ final: Readiness; seen: Readiness['state'][] }> {
  const seen: Readiness['state'][] = [];
  const final = await waitFor(
    async () => {
      const r = await deployer.readiness('facade-ads', track);
      seen.push(r.state);
      return r.state === 'progressing' ? undefined : r;
    },
    { timeoutMs: 10_000, intervalMs: 10, what: `${track} rollout` },
  );
  return { final, seen };
}

describe('Kubernetes deployer', () => {
  it('deploys a canary: one patch with the read resourceVersion, then progress to ready on the Service target', async () => {
    const rvBefore = kube.deployments.get(CANARY)?.metadata.resourceVersion;
    await deployer.deployCanary(ref('4'));
    const [patch] = kube.patches(CANARY);
    expect(patch).toMatchObject({ contentType: 'application/strategic-merge-patch+json', authorization: 'Bearer test-token' });
    expect(patch?.body).toMatchObject({
      metadata: { resourceVersion: rvBefore },
      spec: { replicas: 1, template: { spec: { containers: [{ name: 'inference', env: [{ name: 'SEGSERVE_MODEL_VERSION', value: '4' }, { name: 'SEGSERVE_MODEL_SHA256', value: ref('4').sha256 }] }] } } },
    });
    expect(kube.env(CANARY, 'SEGSERVE_MODEL_VERSION')).toBe('4');
    const { final, seen } = await settle('canary');
    expect(seen[0]).toBe('progressing');
    expect(final).toEqual({ state: 'ready', target: `dns:///${CANARY}.${NS}.svc:50051` });
    // Idempotent: the same version again reads, and patches nothing.
    await deployer.deployCanary(ref('4'));
    expect(kube.patches(CANARY)).toHaveLength(1);
    // The stable was only read, never written.
    expect(kube.patches(STABLE)).toHaveLength(0);
  });

  it('re-reads and retries on 409 Conflict, bounded', async () => {
    kube.conflicts.set(STABLE, 2);
    await deployer.deployStable(ref('5'));
    const patches = kube.patches(STABLE);
    expect(patches).toHaveLength(3);
    // Each retry carries the resourceVersion it read again.
    const versions = patches.map((p) => (p.body as { metadata: { resourceVersion: string } }).metadata.resourceVersion);
    expect(new Set(versions).size).toBe(3);
    expect(kube.env(STABLE, 'SEGSERVE_MODEL_VERSION')).toBe('5');
    // The stable's replicas belong to its HPA: untouched.
    expect(kube.deployments.get(STABLE)?.spec.replicas).toBe(2);

    kube.conflicts.set(STABLE, 10);
    const limited = client(url, 3);
    await expect(limited.deployStable(ref('6'))).rejects.toBeInstanceOf(KubernetesConflictError);
    expect(kube.patches(STABLE)).toHaveLength(6);
    expect(kube.env(STABLE, 'SEGSERVE_MODEL_VERSION')).toBe('5');
  });

  it('reports ProgressDeadlineExceeded as failed', async () => {
    kube.stuck.add(CANARY);
    await deployer.deployCanary(ref('4'));
    const { final } = await settle('canary');
    expect(final).toMatchObject({ state: 'failed', reason: expect.stringMatching(/ProgressDeadlineExceeded.*timed out progressing/) });
  });

  it('removes the canary by scaling it to zero; rollback re-applies the previous version', async () => {
    await deployer.deployCanary(ref('4'));
    await deployer.removeCanary('facade-ads');
    expect(kube.deployments.get(CANARY)?.spec.replicas).toBe(0);
    expect(await deployer.readiness('facade-ads', 'canary')).toMatchObject({ state: 'failed', reason: expect.stringMatching(/scaled to zero/) });
    await deployer.deployStable(ref('4'));
    await settle('stable');
    await deployer.deployStable(ref('3'));
    expect(kube.env(STABLE, 'SEGSERVE_MODEL_VERSION')).toBe('3');
    expect(kube.env(STABLE, 'SEGSERVE_MODEL_SHA256')).toBe(ref('3').sha256);
    expect((await settle('stable')).final.state).toBe('ready');
  });

  it('a model without Deployments is failed, not an exception', async () => {
    expect(await deployer.readiness('other-model', 'stable')).toMatchObject({ state: 'failed', reason: expect.stringMatching(/inference-other-model-stable not found/) });
  });

  it('drives a whole rollout: canary deployed and scaled, stable patched to the candidate, canary back to zero', async () => {
    const { outcome, store } = await runFastRollout({ deployer, events: { publish: () => Promise.resolve() }, stable: ref('3'), stableTarget: `dns:///${STABLE}.${NS}.svc:50051`, candidate: ref('4'), id: 'e4' });
    expect(outcome.outcome).toBe('promoted');
    expect(kube.env(STABLE, 'SEGSERVE_MODEL_VERSION')).toBe('4');
    expect(kube.deployments.get(CANARY)?.spec.replicas).toBe(0);
    expect(store.values.get('facade-ads')?.record).toMatchObject({ phase: 'Succeeded', stable: { version: '4', target: `dns:///${STABLE}.${NS}.svc:50051` }, previous_stable: { version: '3' } });
    // Only get and patch, only on the two Deployments (the Role allows nothing else).
    expect(new Set(kube.requests.map((r) => `${r.method} ${r.path}`))).toEqual(new Set([`GET /apis/apps/v1/namespaces/${NS}/deployments/${STABLE}`, `PATCH /apis/apps/v1/namespaces/${NS}/deployments/${STABLE}`, `GET /apis/apps/v1/namespaces/${NS}/deployments/${CANARY}`, `PATCH /apis/apps/v1/namespaces/${NS}/deployments/${CANARY}`]));
  });
});
