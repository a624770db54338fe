// The NATS connection of the one-shot client commands (publish, decisions, rollout, rollback).
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { parseNatsUrl, redactNatsUrl } from '@segserve/proto';

/** The server of the client commands when neither --nats nor SEGSERVE_NATS_URL names one: `segserve stack`'s. */
export const DEFAULT_NATS_URL = 'nats://127.0.0.1:4222';

/**
 * Connects, runs `fn`, closes. Credentials in the URL (the CI publisher's
 * `nats://publisher:…@nats:4222`) go to user/pass: nats.js ignores a URL's user info.
 * `follow`: keep reconnecting while `fn` runs (watch commands), instead of failing.
 */
export async function withNats<T>(url: string, name: string, fn: (nc: NatsConnection) => Promise<T>, options: { readonly follow?: boolean } = {}): Promise<T> {
  const nc = await connect({ ...parseNatsUrl(url), name, timeout: 10_000, ...(options.follow ? { maxReconnectAttempts: -1, reconnectTimeWait: 1_000 } : {}) }).catch((err: unknown) => {
    throw new Error(`cannot connect to NATS at ${redactNatsUrl(url)} (${err instanceof Error ? err.message : String(err)})`, { cause: err });
  });
  try {
    return await fn(nc);
  } finally {
    await nc.close();
  }
}
