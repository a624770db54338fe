// Every upstream call carries a deadline (docs/architecture.md#grpc). Clients may shorten the gateway's
// default, never extend it: a long deadline would let one client hold an inference slot.

/** The REST header a client uses to shorten the deadline, in milliseconds. */
export const TIMEOUT_HEADER = 'x-segserve-timeout-ms';

export type TimeoutParse = { readonly ok: true; readonly ms: number } | { readonly ok: false; readonly message: string };

/** Effective timeout: the default, or the client's header value when it is shorter. */
export function effectiveTimeoutMs(defaultMs: number, header: string | undefined): TimeoutParse {
  if (header === undefined || header.trim() === '') return { ok: true, ms: defaultMs };
  const text = header.trim();
  if (!/^\d{1,9}$/.test(text)) return { ok: false, message: `${TIMEOUT_HEADER} must be a whole number of milliseconds` };
  const ms = Number(text);
  if (ms <= 0) return { ok: false, message: `${TIMEOUT_HEADER} must be positive` };
  return { ok: true, ms: Math.min(ms, defaultMs) };
}

/** The earlier of the gateway's own deadline and one the caller brought (gRPC), as epoch ms. */
export function earliestDeadline(nowMs: number, timeoutMs: number, callerDeadlineMs: number | undefined): number {
  const own = nowMs + timeoutMs;
  return callerDeadlineMs !== undefined && Number.isFinite(callerDeadlineMs) ? Math.min(own, callerDeadlineMs) : own;
}
