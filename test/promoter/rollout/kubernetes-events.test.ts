// Kubernetes-visible rollouts (issue 12) through the real @kubernetes/client-node against the
// REST fake: every phase change, check verdict and rollback of a rollout driven by the real
// controller is an events.k8s.io/v1 Event regarding both Deployments (what `kubectl describe
// deploy` lists), with the experiment id in its note, and the phase is in annotations on both.
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { silentLogger } from '@segserve/runtime';
import { KubernetesDeployer } from '../../../services/promoter/src/adapters/kubernetes-deployer.js';
import { KubernetesRolloutEvents, ROLLOUT_ANNOTATIONS, kubernetesEventOf } from '../../../services/promoter/src/adapters/kubernetes-events.js';
import type { ModelRef, TrackMetrics } from '../../../services/promoter/src/domain/ports.js';
import type { RolloutEvent } from '../../../services/promoter/src/domain/rollout.js';
import { withViews } from '../../../services/promoter/src/rollout/events.js';
import { memoryLogger } from '../intake/support.js';
import { FakeKube } from './fake-kube.js';
import { runFastRollout } from './support.js';

const NS = 'segserve';
const STABLE = 'inference-facade-ads-stable';
const CANARY = 'inference-facade-ads-canary';
const ref = (version: string): ModelRef => ({ model: 'facade-ads', version, sha256: version.repeat(64).slice(0, 64) });

let kube: FakeKube;
let deployer: KubernetesDeployer;

beforeEach(async () => {
  kube = new FakeKube(NS);
  kube.add(STABLE, '3', 2);
  kube.add(CANARY, '3', 0);
  const url = await kube.start();
  deployer = KubernetesDeployer.fromKubeConfig(kube.kubeConfig(url), { log: silentLogger });
});

afterEach(() => kube.stop());

/** One rollout of facade-ads 4 over stable 3, driven by the real controller, Events as a view of ROLLOUT_EVENTS. */
async function rollout(canary: TrackMetrics, log = memoryLogger()) {
  const published: RolloutEvent[] = [];
  const api = deployer.eventsApi;
  if (!api) throw new Error('no events API');
  const events = withViews({ publish: (e) => Promise.resolve(void published.push(e)) }, [{ name: 'kubernetes events', sink: new KubernetesRolloutEvents({ api, deployments: deployer, log: silentLogger, instance: 'promoter-0' }) }], log);
  const { outcome, store } = await runFastRollout({ deployer, events, stable: ref('3'), stableTarget: `dns:///${STABLE}.${NS}.svc:50051`, candidate: ref('4'), id: 'exp-4', canary });
  return { outcome, published, store, log };
}

const reasons = (name: string): string[] => kube.describe(name).map((e) => e.reason);

describe('Kubernetes Events and annotations of a rollout', () => {
  it('a promotion: every phase change and check on both Deployments, with the experiment id; the phase in annotations', async () => {
    const { outcome, published } = await rollout({ requests: 100, errors: 0, latencyP95Seconds: 0.3, rssBytes: 1, memoryLimitBytes: 10 });
    expect(outcome.outcome).toBe('promoted');
    for (const name of [STABLE, CANARY]) {
      const story = reasons(name);
      // The rollout's story, in order, as `kubectl describe deploy` lists it.
      expect(story.filter((r) => r.startsWith('Rollout'))).toEqual(['RolloutVerifying', 'RolloutCanary', 'RolloutCanary', 'RolloutPromoting', 'RolloutBaking', 'RolloutSucceeded']);
      expect(story.filter((r) => r === 'CheckPassed').length).toBeGreaterThanOrEqual(3);
      // One Event per rollout event and Deployment.
      expect(story).toHaveLength(published.length);
      for (const e of kube.describe(name)) {
        expect(e).toMatchObject({ reportingController: 'segserve.io/promoter', reportingInstance: 'promoter-0', regarding: { apiVersion: 'apps/v1', kind: 'Deployment', name, namespace: NS, uid: `uid-${name}` } });
        expect(e.note).toMatch(/^\[exp-4\] facade-ads 4: /);
      }
      expect(kube.deployments.get(name)?.metadata.annotations).toMatchObject({
        [ROLLOUT_ANNOTATIONS.phase]: 'Succeeded (promoted)',
        [ROLLOUT_ANNOTATIONS.experiment]: 'exp-4',
        [ROLLOUT_ANNOTATIONS.version]: '4',
        [ROLLOUT_ANNOTATIONS.reason]: expect.stringMatching(/^4 promoted and baked \(\d+ passing checks? during the bake\) \[promoted\]$/) as string,
      });
    }
    const canaryStep = kube.describe(STABLE).find((e) => e.reason === 'RolloutCanary');
    expect(canaryStep).toMatchObject({ type: 'Normal', action: 'Rollout', note: '[exp-4] facade-ads 4: Canary 10% — verified; canary at 10%' });
    // Annotation patches are metadata only: the canary's pod template saw only the driver's own changes.
    expect(kube.deployments.get(STABLE)?.metadata.generation).toBe(2);
    // What the Role allows, and nothing else: get and patch on the two Deployments, create on events.
    expect(new Set(kube.requests.map((r) => `${r.method} ${r.path}`))).toEqual(
      new Set([
        `GET /apis/apps/v1/namespaces/${NS}/deployments/${STABLE}`,
        `PATCH /apis/apps/v1/namespaces/${NS}/deployments/${STABLE}`,
        `GET /apis/apps/v1/namespaces/${NS}/deployments/${CANARY}`,
        `PATCH /apis/apps/v1/namespaces/${NS}/deployments/${CANARY}`,
        `POST /apis/events.k8s.io/v1/namespaces/${NS}/events`,
      ]),
    );
  });

  it('a rollback: the failed check and the Failed phase are Warnings with the reason code, and the annotations say Failed', async () => {
    const { outcome } = await rollout({ requests: 100, errors: 30, latencyP95Seconds: 0.3, rssBytes: 1, memoryLimitBytes: 10 });
    expect(outcome).toMatchObject({ outcome: 'rolled_back', reasonCode: 'canary_analysis_failed' });
    const events = kube.describe(STABLE);
    expect(events.find((e) => e.reason === 'CheckFailed')).toMatchObject({ type: 'Warning', action: 'Analyze', note: expect.stringMatching(/^\[exp-4\] facade-ads 4: Canary 10% check fail: error rate 30.0% \(30\/100\)/) as string });
    expect(events.at(-1)).toMatchObject({ reason: 'RolloutFailed', type: 'Warning', action: 'RollBack', note: expect.stringMatching(/^\[exp-4\] facade-ads 4: Failed \(canary_analysis_failed\) — 1 failed checks \(max 1\); last: fail: .* \[canary_analysis_failed\]$/) as string });
    expect(kube.deployments.get(CANARY)?.metadata.annotations?.[ROLLOUT_ANNOTATIONS.phase]).toBe('Failed (canary_analysis_failed)');
    expect(kube.env(STABLE, 'SEGSERVE_MODEL_VERSION')).toBe('3');
  });

  it('an event published again after a restart creates no duplicate; an API server in trouble does not stop the rollout', async () => {
    const api = deployer.eventsApi;
    if (!api) throw new Error('no events API');
    const sink = new KubernetesRolloutEvents({ api, deployments: deployer, log: silentLogger, instance: 'promoter-0' });
    const e: RolloutEvent = { type: 'rollback_requested', model: 'facade-ads', experiment_id: 'exp-4', version: '4', phase: 'Baking', step: null, weight: 0, at: new Date().toISOString(), reason: 'masks look wrong' };
    await sink.publish(e, 'facade-ads:7:0');
    await sink.publish(e, 'facade-ads:7:0');
    expect(kube.describe(STABLE).map((x) => x.reason)).toEqual(['RollbackRequested']);
    expect(kube.describe(STABLE)[0]).toMatchObject({ type: 'Warning', note: '[exp-4] facade-ads 4: rollback requested in Baking: masks look wrong' });

    kube.eventFailures = 1_000;
    const { outcome, log } = await rollout({ requests: 100, errors: 0, latencyP95Seconds: 0.3, rssBytes: 1, memoryLimitBytes: 10 });
    expect(outcome.outcome).toBe('promoted');
    expect(log.lines.some((l) => l.includes('rollout event not recorded') && l.includes('kubernetes events'))).toBe(true);
  });

  it.each([
    [{ type: 'phase', phase: 'Baking', reason: 'promoted 4; baking for 60 s' }, 'RolloutBaking', 'Normal'],
    [{ type: 'phase', phase: 'Failed', reason: 'no passing check during the bake and 2 extensions', reason_code: 'no_evidence' }, 'RolloutFailed', 'Warning'],
    [{ type: 'check', phase: 'Baking', verdict: 'hold', reason: 'hold: the new stable served 0 requests (fewer than 50)' }, 'CheckHeld', 'Normal'],
    [{ type: 'bake_extended', phase: 'Baking', reason: 'no passing check during the bake yet' }, 'BakeExtended', 'Normal'],
    [{ type: 'restored', phase: 'Failed', reason: 'stable 3 restored' }, 'StableRestored', 'Normal'],
  ] as const)('%o → %s (%s)', (partial, reason, type) => {
    const e = { model: 'facade-ads', experiment_id: 'exp-4', version: '4', step: null, weight: 0, at: '2026-12-01T00:00:00Z', ...partial } as RolloutEvent;
    expect(kubernetesEventOf(e)).toMatchObject({ reason, type });
    expect(kubernetesEventOf({ ...e, reason: 'x'.repeat(5000) }).note.length).toBeLessThanOrEqual(1024);
  });
});
