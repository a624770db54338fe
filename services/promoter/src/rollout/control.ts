// Manual rollback goes through the promoter (only it writes the rollout state, and with the
// local driver only it can start the previous version again): a NATS request on
// `segserve.control.rollback.<model>`, answered by one promoter (queue group).
import type { NatsConnection, Subscription } from '@nats-io/transport-node';
import type { Logger } from '../domain/ports.js';
import type { RollbackAnswer } from './rollouts.js';

export const ROLLBACK_SUBJECT_PREFIX = 'segserve.control.rollback';
export const rollbackSubject = (model: string): string => `${ROLLBACK_SUBJECT_PREFIX}.${model}`;

export interface RollbackRequest {
  readonly reason: string;
}

/** Serves rollback requests until the subscription is drained. */
export function serveRollbacks(nc: NatsConnection, handle: (model: string, reason: string) => Promise<RollbackAnswer>, log: Logger): Subscription {
  const sub = nc.subscribe(`${ROLLBACK_SUBJECT_PREFIX}.*`, { queue: 'segserve-promoter' });
  void (async () => {
    for await (const msg of sub) {
      const model = msg.subject.slice(ROLLBACK_SUBJECT_PREFIX.length + 1);
      let answer: RollbackAnswer;
      try {
        const req = msg.json<Partial<RollbackRequest>>();
        const reason = typeof req.reason === 'string' && req.reason.trim() !== '' ? req.reason.trim().slice(0, 500) : 'no reason given';
        log.info('manual rollback requested', { model, reason });
        answer = await handle(model, reason);
      } catch (err) {
        answer = { ok: false, message: `${model}: ${err instanceof Error ? err.message : String(err)}` };
      }
      msg.respond(JSON.stringify(answer));
    }
  })();
  return sub;
}

/** The CLI side: asks a promoter to roll `model` back. */
export async function requestRollback(nc: NatsConnection, model: string, reason: string, timeoutMs = 10_000): Promise<RollbackAnswer> {
  try {
    const res = await nc.request(rollbackSubject(model), JSON.stringify({ reason } satisfies RollbackRequest), { timeout: timeoutMs });
    return res.json<RollbackAnswer>();
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    if (/no responders|503/i.test(message)) return { ok: false, message: `no promoter is running (start one with \`segserve promoter\` or \`segserve stack\`)` };
    throw err;
  }
}
