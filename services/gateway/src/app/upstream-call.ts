// Calls one unary upstream method with a deadline and optional cancellation, and turns a failure
// into a SegserveError exactly once (fromGrpcError reads the `segserve-error-code` trailer that
// segserve pods send; foreign servers fall back to the status mapping).
import * as grpc from '@grpc/grpc-js';
import { ERROR_CODE_METADATA_KEY, fromGrpcError, SegserveError, type ErrorCode } from '@segserve/proto';
import { CLIENT_METADATA_KEY } from '@segserve/runtime';

export interface CallContext {
  /** Absolute deadline, epoch milliseconds. */
  readonly deadline: number;
  /** Aborts the upstream call (REST client went away, gRPC caller cancelled). */
  readonly signal?: AbortSignal;
  /** Whose request it is (ApiKeys.clientOf), told to the upstream for its admission. */
  readonly client?: string;
}

export interface CallResult<T> {
  readonly response: T;
  /** Response headers of the upstream (e.g. its own version header). */
  readonly metadata: grpc.Metadata;
}

/** Starts the call, e.g. `(md, opts, cb) => client.Segment(request, md, opts, cb)`. */
export type StartCall<Res> = (metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<Res>) => grpc.ClientUnaryCall;

// Messages a client may see when the failure was not written by a segserve process: grpc-js's
// own texts name internal addresses ("connect ECONNREFUSED 10.0.3.7:50051").
const GENERIC_MESSAGE: Partial<Record<ErrorCode, string>> = {
  UNAVAILABLE: 'no inference upstream is available right now',
  DEADLINE: 'the upstream did not answer before the deadline',
  OVERLOADED: 'the upstream is overloaded',
  INVALID_INPUT: 'the upstream rejected the request',
  MODEL_NOT_FOUND: 'model not found upstream',
};

/** Parses an upstream failure; the raw error stays in `cause` for the logs. */
export function upstreamError(err: grpc.ServiceError): SegserveError {
  const parsed = fromGrpcError(err);
  const fromSegserve = err.metadata?.get(ERROR_CODE_METADATA_KEY).length > 0;
  if (fromSegserve || parsed.code === 'INTERNAL') return parsed;
  return new SegserveError(parsed.code, GENERIC_MESSAGE[parsed.code] ?? parsed.message, { cause: err });
}

/** Attempts beyond the first, as grpc-js reports them (`grpc-previous-rpc-attempts`). */
function previousAttempts(...sources: Array<grpc.Metadata | undefined>): number {
  let n = 0;
  for (const md of sources) {
    const v = Number(md?.get('grpc-previous-rpc-attempts')[0] ?? 0);
    if (Number.isFinite(v) && v > n) n = v;
  }
  return n;
}

/**
 * Runs one unary call. `onRetries` hears how many extra attempts the channel's retry policy
 * made, success or not.
 */
export function unaryCall<Res>(start: StartCall<Res>, ctx: CallContext, onRetries: (n: number) => void): Promise<CallResult<Res>> {
  return new Promise((resolve, reject) => {
    if (ctx.signal?.aborted) {
      reject(new SegserveError('UNAVAILABLE', 'request cancelled by the client'));
      return;
    }
    let headers: grpc.Metadata | undefined;
    const metadata = new grpc.Metadata();
    if (ctx.client !== undefined) metadata.set(CLIENT_METADATA_KEY, ctx.client);
    const call = start(metadata, { deadline: new Date(ctx.deadline) }, (err, response) => {
      ctx.signal?.removeEventListener('abort', onAbort);
      if (err) {
        onRetries(previousAttempts(headers, err.metadata));
        reject(upstreamError(err));
      } else if (response === undefined) {
        reject(new SegserveError('INTERNAL', 'internal error', { cause: new Error('upstream sent no response') }));
      } else {
        onRetries(previousAttempts(headers));
        resolve({ response, metadata: headers ?? new grpc.Metadata() });
      }
    });
    call.on('metadata', (md: grpc.Metadata) => {
      headers = md;
    });
    const onAbort = (): void => call.cancel();
    ctx.signal?.addEventListener('abort', onAbort, { once: true });
  });
}
