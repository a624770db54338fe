// ROLLOUT_EVENTS publishing: subject `segserve.rollouts.<model>`, one JSON event per message,
// with a message id so that a promoter that re-publishes after a restart adds no duplicate.
import type { JetStreamClient } from '@nats-io/jetstream';
import { NATS_NAMES } from '@segserve/proto';
import type { RolloutEvent } from '../domain/rollout.js';
import type { Logger } from '../domain/ports.js';
import type { RolloutEventSink } from './controller.js';

export function jetStreamEventSink(js: JetStreamClient, timeoutMs = 5_000): RolloutEventSink {
  return {
    publish: async (event: RolloutEvent, msgId: string) => {
      await js.publish(NATS_NAMES.rolloutEventsSubject(event.model), JSON.stringify(event), { msgID: `rollout:${msgId}`, timeout: timeoutMs });
    },
  };
}

/**
 * Publishes to `primary` (ROLLOUT_EVENTS: its failure is the caller's) and to each of `views`
 * (Kubernetes Events): a view that fails is logged, never blocks the rollout or the record.
 */
export function withViews(primary: RolloutEventSink, views: readonly { readonly name: string; readonly sink: RolloutEventSink }[], log: Logger): RolloutEventSink {
  return {
    publish: async (event: RolloutEvent, msgId: string) => {
      for (const view of views) {
        await view.sink.publish(event, msgId).catch((error: unknown) => log.warn('rollout event not recorded', { view: view.name, model: event.model, type: event.type, error }));
      }
      await primary.publish(event, msgId);
    },
  };
}
