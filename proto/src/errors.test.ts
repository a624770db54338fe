import { describe, expect, it } from 'vitest';
import { Metadata, status } from '@grpc/grpc-js';
import { ERROR_CODES, ERROR_CODE_METADATA_KEY, GRPC_STATUS, HTTP_STATUS, SegserveError, fromGrpcError, toGrpcServerError, toSegserveError } from './errors.js';

describe('error table (docs/architecture.md#errors)', () => {
  it.each([
    ['INVALID_INPUT', status.INVALID_ARGUMENT, 400],
    ['UNSUPPORTED_MEDIA_TYPE', status.INVALID_ARGUMENT, 415],
    ['TOO_LARGE', status.RESOURCE_EXHAUSTED, 413],
    ['MODEL_NOT_FOUND', status.NOT_FOUND, 404],
    ['OVERLOADED', status.RESOURCE_EXHAUSTED, 503],
    ['UNAVAILABLE', status.UNAVAILABLE, 503],
    ['DEADLINE', status.DEADLINE_EXCEEDED, 504],
    ['UNAUTHENTICATED', status.UNAUTHENTICATED, 401],
    ['INTERNAL', status.INTERNAL, 500],
  ] as const)('%s → gRPC %i, HTTP %i', (code, grpc, http) => {
    expect(GRPC_STATUS[code]).toBe(grpc);
    expect(HTTP_STATUS[code]).toBe(http);
    const err = new SegserveError(code, 'x');
    expect(err.grpcStatus).toBe(grpc);
    expect(err.httpStatus).toBe(http);
  });

  it('covers every code exactly once in the table above', () => {
    expect([...ERROR_CODES].sort()).toEqual(Object.keys(HTTP_STATUS).sort());
  });

  it('turns unknown errors into INTERNAL without leaking their message', () => {
    const err = toSegserveError(new Error('secret path /etc/passwd'));
    expect(err.code).toBe('INTERNAL');
    expect(err.message).toBe('internal error');
    expect(JSON.stringify(err.toJSON())).not.toContain('passwd');
  });

  it('parses an upstream error by its segserve trailer first, then by status', () => {
    const md = new Metadata();
    md.set(ERROR_CODE_METADATA_KEY, 'TOO_LARGE');
    expect(fromGrpcError({ code: status.RESOURCE_EXHAUSTED, details: 'too big', metadata: md }).code).toBe('TOO_LARGE');
    expect(fromGrpcError({ code: status.RESOURCE_EXHAUSTED, details: 'busy', metadata: new Metadata() }).code).toBe('OVERLOADED');
    expect(fromGrpcError({ code: status.DEADLINE_EXCEEDED }).code).toBe('DEADLINE');
    const unknown = fromGrpcError({ code: status.DATA_LOSS, details: 'disk on fire' });
    expect(unknown.code).toBe('INTERNAL');
    expect(unknown.message).toBe('internal error');
  });
});

describe('toGrpcServerError', () => {
  it.each(ERROR_CODES.map((c) => [c]))('%s: status from the table, the code as a trailer, retry-after where REST sends it', (code) => {
    const e = toGrpcServerError(new SegserveError(code, `about ${code}`));
    expect(e.code).toBe(GRPC_STATUS[code]);
    expect(e.details).toBe(`about ${code}`);
    expect(e.metadata.get(ERROR_CODE_METADATA_KEY)).toEqual([code]);
    expect(e.metadata.get('retry-after')).toEqual(code === 'OVERLOADED' || code === 'UNAVAILABLE' ? ['1'] : []);
    // What the next hop parses is what was sent.
    expect(fromGrpcError(e).code).toBe(code);
  });
});
