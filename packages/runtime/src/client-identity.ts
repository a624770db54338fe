// Who a request is for, as admission counts it (docs/architecture.md#memory-and-admission-by-cost):
// the requests of one client may hold at most a share of a process's memory budget
// (ChargePolicy.clientShare), and inference serves clients' queued requests in turn. A client is
// its API key where the gateway has keys, else its peer's address. The gateway forwards the
// client to inference in the `segserve-client` metadata; inference is reachable only from the
// gateway (deploy/k8s/base/networkpolicies.yaml) and takes it as given, and counts a call that
// carries none by its peer.
import { createHash } from 'node:crypto';

/** gRPC metadata by which the gateway names the client of a request it forwards. */
export const CLIENT_METADATA_KEY = 'segserve-client';

/** A key's client: a digest prefix, so that the key itself is never kept, logged or forwarded. */
export function clientOfApiKey(key: string): string {
  return `key:${createHash('sha256').update(key, 'utf8').digest('hex').slice(0, 16)}`;
}

/**
 * A peer's client: its address without the port — REST's `request.ip`, or grpc-js's `getPeer()`
 * (`127.0.0.1:50312`, `::1:50312`), whose last `:port` is dropped.
 */
export function clientOfPeer(peer: string, withPort = false): string {
  return `peer:${withPort ? peer.replace(/:\d+$/, '') : peer}`;
}

/** The client a forwarded call names, when its metadata value is one (a short printable token). */
export function forwardedClient(value: unknown): string | undefined {
  return typeof value === 'string' && /^[\x21-\x7e]{1,96}$/.test(value) ? value : undefined;
}

/**
 * The client of a call that reached inference: the one the gateway named in `segserve-client`
 * (the metadata's first value), else the peer of the call (grpc-js's `getPeer()`).
 */
export function clientOfForwarded(forwarded: unknown, peer: string): string {
  return forwardedClient(forwarded) ?? clientOfPeer(peer, true);
}
