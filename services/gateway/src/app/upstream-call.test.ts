import * as grpc from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { ERROR_CODE_METADATA_KEY } from '@segserve/proto';
import { upstreamError } from './upstream-call.js';

function serviceError(code: grpc.status, details: string, segserveCode?: string): grpc.ServiceError {
  const metadata = new grpc.Metadata();
  if (segserveCode) metadata.set(ERROR_CODE_METADATA_KEY, segserveCode);
  return Object.assign(new Error(details), { code, details, metadata });
}

describe('upstreamError: parsed once, by the trailer first', () => {
  it.each([
    // the exact code from a segserve pod wins over the status
    [grpc.status.RESOURCE_EXHAUSTED, 'image is 20000×20000', 'TOO_LARGE', 'TOO_LARGE', 'image is 20000×20000'],
    [grpc.status.RESOURCE_EXHAUSTED, 'queue full', 'OVERLOADED', 'OVERLOADED', 'queue full'],
    [grpc.status.INVALID_ARGUMENT, 'GIF is not supported', 'UNSUPPORTED_MEDIA_TYPE', 'UNSUPPORTED_MEDIA_TYPE', 'GIF is not supported'],
    [grpc.status.INTERNAL, 'stack trace here', 'INTERNAL', 'INTERNAL', 'internal error'],
    // foreign servers: the status table, and grpc-js's own texts are not shown to clients
    [grpc.status.UNAVAILABLE, 'No connection established. Last error: connect ECONNREFUSED 10.0.0.7:50051', undefined, 'UNAVAILABLE', 'no inference upstream is available right now'],
    [grpc.status.DEADLINE_EXCEEDED, 'Deadline exceeded after 1.001s,remote_addr=10.0.0.7:50051', undefined, 'DEADLINE', 'the upstream did not answer before the deadline'],
    [grpc.status.NOT_FOUND, 'x', undefined, 'MODEL_NOT_FOUND', 'model not found upstream'],
    [grpc.status.UNKNOWN, 'boom', undefined, 'INTERNAL', 'internal error'],
  ])('status %i, trailer %s → %s', (status, details, trailer, code, message) => {
    const e = upstreamError(serviceError(status, details, trailer));
    expect({ code: e.code, message: e.message }).toEqual({ code, message });
    expect(e.cause).toBeDefined();
  });
});
