// Kubernetes-visible rollouts (issue 12), as Flagger and Argo Rollouts make theirs: with the
// kubernetes driver every rollout event — phase change, check verdict, bake extension, rollback
// request, restore — is also an events.k8s.io/v1 Event regarding both of the model's
// Deployments (stable and canary), with a CamelCase reason, a note naming the experiment, and
// the phase in annotations on both, so that `kubectl describe deploy inference-<model>-stable`
// and `kubectl get events` tell the rollout's story. NATS stays the record; these are its view.
//
// - An Event's name is derived from the rollout event's message id: a promoter that publishes
//   again after a restart gets 409 AlreadyExists, which is success (no duplicate Events).
// - Annotations are written on phase changes (and restores): metadata only, no new pods.
// RBAC: create on events.k8s.io events in the namespace (deploy/k8s/base/promoter/rbac.yaml).
import { createHash } from 'node:crypto';
import os from 'node:os';
import { V1MicroTime, type EventsV1Api, type EventsV1Event, type V1ObjectReference } from '@kubernetes/client-node';
import type { Track } from '@segserve/proto';
import type { Logger } from '../domain/ports.js';
import type { RolloutEvent } from '../domain/rollout.js';
import type { RolloutEventSink } from '../rollout/controller.js';

export const REPORTING_CONTROLLER = 'segserve.io/promoter';
/** Annotations on both Deployments of a model: the rollout as `kubectl describe` shows it. */
export const ROLLOUT_ANNOTATIONS = {
  phase: 'segserve.io/rollout-phase',
  experiment: 'segserve.io/rollout-experiment',
  version: 'segserve.io/rollout-candidate',
  reason: 'segserve.io/rollout-reason',
  updated: 'segserve.io/rollout-updated',
} as const;

/** An Event's note is limited to 1 kB by the API server. */
const MAX_NOTE = 1024;

export interface KubernetesEventShape {
  readonly reason: string;
  readonly type: 'Normal' | 'Warning';
  readonly action: string;
  readonly note: string;
}

const PHASE_REASONS: Readonly<Record<string, string>> = {
  Idle: 'RolloutIdle',
  Verifying: 'RolloutVerifying',
  Canary: 'RolloutCanary',
  Promoting: 'RolloutPromoting',
  Baking: 'RolloutBaking',
  Succeeded: 'RolloutSucceeded',
  Failed: 'RolloutFailed',
};

function truncate(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

/** The phase as one short label: `Canary 25%`, `Failed (no_evidence)`. */
export function phaseAnnotation(e: RolloutEvent): string {
  if (e.phase === 'Canary') return `Canary ${e.weight}%`;
  if ((e.phase === 'Failed' || e.phase === 'Succeeded') && e.reason_code) return `${e.phase} (${e.reason_code})`;
  return e.phase;
}

/** Reason, type, action and note of the Kubernetes Event for one rollout event (pure). */
export function kubernetesEventOf(e: RolloutEvent): KubernetesEventShape {
  const who = `[${e.experiment_id ?? 'no experiment'}] ${e.model}${e.version ? ` ${e.version}` : ''}`;
  const note = (text: string): string => truncate(`${who}: ${text}`, MAX_NOTE);
  switch (e.type) {
    case 'phase': {
      const failed = e.phase === 'Failed';
      const code = e.reason_code && (failed || e.phase === 'Succeeded') ? ` [${e.reason_code}]` : '';
      return { reason: PHASE_REASONS[e.phase] ?? 'RolloutPhase', type: failed ? 'Warning' : 'Normal', action: failed ? 'RollBack' : 'Rollout', note: note(`${phaseAnnotation(e)} — ${e.reason ?? ''}${code}`) };
    }
    case 'check': {
      const reason = e.verdict === 'pass' ? 'CheckPassed' : e.verdict === 'fail' ? 'CheckFailed' : 'CheckHeld';
      return { reason, type: e.verdict === 'fail' ? 'Warning' : 'Normal', action: 'Analyze', note: note(`${e.phase}${e.phase === 'Canary' ? ` ${e.weight}%` : ''} check ${e.reason ?? e.verdict ?? ''}${e.failed_checks ? ` (failed checks ${e.failed_checks})` : ''}`) };
    }
    case 'bake_extended':
      return { reason: 'BakeExtended', type: 'Normal', action: 'Analyze', note: note(e.reason ?? 'bake extended') };
    case 'rollback_requested':
      return { reason: 'RollbackRequested', type: 'Warning', action: 'RollBack', note: note(`rollback requested in ${e.phase}: ${e.reason ?? ''}`) };
    case 'rollback_refused':
      return { reason: 'RollbackRefused', type: 'Normal', action: 'RollBack', note: note(`rollback refused: ${e.reason ?? ''}`) };
    case 'restored':
      return { reason: 'StableRestored', type: 'Normal', action: 'RollBack', note: note(e.reason ?? 'stable restored') };
    case 'target':
      return { reason: 'TargetChanged', type: 'Normal', action: 'Route', note: note(e.reason ?? 'target changed') };
  }
}

/** What the recorder needs of the Kubernetes driver (KubernetesDeployer has it). */
export interface DeploymentAccess {
  readonly namespace: string;
  reference(model: string, track: Track): Promise<V1ObjectReference | null>;
  annotate(model: string, track: Track, annotations: Readonly<Record<string, string>>): Promise<void>;
}

export interface KubernetesRolloutEventsOptions {
  readonly api: EventsV1Api;
  readonly deployments: DeploymentAccess;
  readonly log: Logger;
  /** This promoter (the pod name in a cluster): Events' reportingInstance. */
  readonly instance?: string;
  readonly clock?: () => Date;
}

function statusCode(err: unknown): number | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'number' ? code : undefined;
}

const TRACKS: readonly Track[] = ['stable', 'canary'];

export class KubernetesRolloutEvents implements RolloutEventSink {
  private readonly instance: string;
  private readonly clock: () => Date;

  constructor(private readonly options: KubernetesRolloutEventsOptions) {
    this.instance = truncate(options.instance ?? os.hostname(), 128);
    this.clock = options.clock ?? (() => new Date());
  }

  async publish(event: RolloutEvent, msgId: string): Promise<void> {
    const shape = kubernetesEventOf(event);
    for (const track of TRACKS) {
      const regarding = await this.options.deployments.reference(event.model, track);
      if (!regarding) continue; // a model without Deployments here: nothing to attach to
      await this.create(regarding, shape, msgId);
      if (event.type === 'phase' || event.type === 'restored') await this.options.deployments.annotate(event.model, track, this.annotations(event));
    }
  }

  private annotations(e: RolloutEvent): Record<string, string> {
    return {
      [ROLLOUT_ANNOTATIONS.phase]: phaseAnnotation(e),
      [ROLLOUT_ANNOTATIONS.experiment]: e.experiment_id ?? '',
      [ROLLOUT_ANNOTATIONS.version]: e.version ?? '',
      [ROLLOUT_ANNOTATIONS.reason]: truncate(`${e.reason ?? ''}${e.reason_code ? ` [${e.reason_code}]` : ''}`, 512),
      [ROLLOUT_ANNOTATIONS.updated]: e.at,
    };
  }

  private async create(regarding: V1ObjectReference, shape: KubernetesEventShape, msgId: string): Promise<void> {
    const name = `${regarding.name ?? 'deployment'}.${createHash('sha256').update(`${msgId}\0${regarding.name ?? ''}`).digest('hex').slice(0, 16)}`;
    const body: EventsV1Event = {
      apiVersion: 'events.k8s.io/v1',
      kind: 'Event',
      metadata: { name, namespace: this.options.deployments.namespace },
      eventTime: new V1MicroTime(this.clock().getTime()),
      reportingController: REPORTING_CONTROLLER,
      reportingInstance: this.instance,
      action: shape.action,
      reason: shape.reason,
      type: shape.type,
      note: shape.note,
      regarding,
    };
    try {
      await this.options.api.createNamespacedEvent({ namespace: this.options.deployments.namespace, body });
    } catch (err) {
      // Published before a restart: the Event is there already.
      if (statusCode(err) === 409) return;
      throw err;
    }
  }
}
