// ROLLOUT_EVENTS publishing: subject `segserve.rollouts.<model>`, one JSON event per message,
// with a message id so that a promoter that re-publishes after a restart adds no duplicate.
import type { JetStreamClient } from '@nats-io/jetstream';
import { NATS_NAMES } from '@segserve/proto';
import type { RolloutEvent } from '../domain/rollout.js';
import type { RolloutEventSink } from './controller.js';

export function jetStreamEventSink(js: JetStreamClient, timeoutMs = 5_000): RolloutEventSink {
  return {
    publish: async (event: RolloutEvent, msgId: string) => {
      await js.publish(NATS_NAMES.rolloutEventsSubject(event.model), JSON.stringify(event), { msgID: `rollout:${msgId}`, timeout: timeoutMs });
    },
  };
}
