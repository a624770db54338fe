// A gRPC call → CallContext: one AbortSignal that fires when the client cancels or when the
// call's deadline passes, with a SegserveError as its reason (DEADLINE or UNAVAILABLE), so that
// queued work is withdrawn and slots are freed (docs/reliability.md items 15, 16).

import type { ServerUnaryCall } from '@grpc/grpc-js';
import { SegserveError } from '@segserve/proto';
import { CLIENT_METADATA_KEY, clientOfForwarded } from '@segserve/runtime';
import type { CallContext } from '../service.js';

export interface CallScope extends CallContext {
  /** Clears the deadline timer once the call has been answered. */
  done(): void;
}

/** How early before the deadline a client's cancel still counts as the deadline passing. */
const DEADLINE_SLACK_MS = 100;

export function callContext(call: ServerUnaryCall<unknown, unknown>, method: string): CallScope {
  const controller = new AbortController();
  const raw = call.getDeadline();
  const deadline = raw instanceof Date ? raw.getTime() : Number(raw);
  // The client's own deadline timer fires first and cancels the stream; its cancel reaches us a
  // little before our copy of the deadline (ours started when the headers arrived). A cancel
  // that close to the deadline is the deadline.
  const expired = (): boolean => Number.isFinite(deadline) && Date.now() >= deadline - DEADLINE_SLACK_MS;
  const abort = (): void => {
    if (controller.signal.aborted) return;
    controller.abort(expired() ? new SegserveError('DEADLINE', 'deadline exceeded') : new SegserveError('UNAVAILABLE', 'cancelled by the client'));
  };
  call.once('cancelled', abort);
  let timer: NodeJS.Timeout | undefined;
  if (Number.isFinite(deadline)) {
    timer = setTimeout(abort, Math.max(0, deadline - Date.now()));
    timer.unref();
  }
  return {
    signal: controller.signal,
    method,
    peer: call.getPeer(),
    client: clientOfForwarded(call.metadata.get(CLIENT_METADATA_KEY)[0], call.getPeer()),
    done: () => {
      if (timer) clearTimeout(timer);
      call.off('cancelled', abort);
    },
  };
}
