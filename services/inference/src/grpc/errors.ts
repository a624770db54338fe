// SegserveError → gRPC status, through the one table (GRPC_STATUS). The exact segserve code
// travels in the `segserve-error-code` trailer so the gateway never has to guess it from the
// status (RESOURCE_EXHAUSTED is both TOO_LARGE and OVERLOADED).

import { Metadata, type ServiceError, type StatusObject } from '@grpc/grpc-js';
import { ERROR_CODE_METADATA_KEY, RETRY_AFTER_SECONDS, toSegserveError } from '@segserve/proto';

export function toServiceError(err: unknown): Partial<StatusObject> & ServiceError {
  const e = toSegserveError(err);
  const metadata = new Metadata();
  metadata.set(ERROR_CODE_METADATA_KEY, e.code);
  const retry = RETRY_AFTER_SECONDS[e.code];
  if (retry !== undefined) metadata.set('retry-after', String(retry));
  return Object.assign(new Error(e.message), { name: 'SegserveError', code: e.grpcStatus, details: e.message, metadata });
}
