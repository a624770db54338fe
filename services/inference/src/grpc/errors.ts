// SegserveError → gRPC status, through the one table (proto's toGrpcServerError, shared with
// the gateway's gRPC edge): the exact segserve code travels in the `segserve-error-code` trailer
// so the gateway never has to guess it from the status.

import type { ServiceError, StatusObject } from '@grpc/grpc-js';
import { toGrpcServerError, toSegserveError } from '@segserve/proto';

export function toServiceError(err: unknown): Partial<StatusObject> & ServiceError {
  return toGrpcServerError(toSegserveError(err));
}
