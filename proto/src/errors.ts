// The one error table of docs/architecture.md#errors, read by both edges (gRPC and REST). A code missing
// from either mapping fails to compile (`satisfies Record<ErrorCode, …>`).
import { Metadata, status as GrpcStatus } from '@grpc/grpc-js';

export const ERROR_CODES = [
  'INVALID_INPUT',
  'UNSUPPORTED_MEDIA_TYPE',
  'TOO_LARGE',
  'MODEL_NOT_FOUND',
  'OVERLOADED',
  'UNAVAILABLE',
  'DEADLINE',
  'UNAUTHENTICATED',
  'INTERNAL',
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

/** gRPC status for each code. OVERLOADED is RESOURCE_EXHAUSTED: the client should back off. */
export const GRPC_STATUS = {
  INVALID_INPUT: GrpcStatus.INVALID_ARGUMENT,
  UNSUPPORTED_MEDIA_TYPE: GrpcStatus.INVALID_ARGUMENT,
  TOO_LARGE: GrpcStatus.RESOURCE_EXHAUSTED,
  MODEL_NOT_FOUND: GrpcStatus.NOT_FOUND,
  OVERLOADED: GrpcStatus.RESOURCE_EXHAUSTED,
  UNAVAILABLE: GrpcStatus.UNAVAILABLE,
  DEADLINE: GrpcStatus.DEADLINE_EXCEEDED,
  UNAUTHENTICATED: GrpcStatus.UNAUTHENTICATED,
  INTERNAL: GrpcStatus.INTERNAL,
} as const satisfies Record<ErrorCode, GrpcStatus>;

/** HTTP status for each code. UNSUPPORTED_MEDIA_TYPE is INVALID_INPUT's 415 case (docs/architecture.md#errors). */
export const HTTP_STATUS = {
  INVALID_INPUT: 400,
  UNSUPPORTED_MEDIA_TYPE: 415,
  TOO_LARGE: 413,
  MODEL_NOT_FOUND: 404,
  OVERLOADED: 503,
  UNAVAILABLE: 503,
  DEADLINE: 504,
  UNAUTHENTICATED: 401,
  INTERNAL: 500,
} as const satisfies Record<ErrorCode, number>;

/** Seconds a client should wait before retrying, sent as Retry-After where it applies. */
export const RETRY_AFTER_SECONDS: Partial<Record<ErrorCode, number>> = { OVERLOADED: 1, UNAVAILABLE: 1 };

/** Metadata key carrying the segserve code across gRPC hops, so the gateway need not guess. */
export const ERROR_CODE_METADATA_KEY = 'segserve-error-code';

export interface SegserveErrorOptions {
  readonly cause?: unknown;
  readonly details?: Readonly<Record<string, unknown>>;
}

/**
 * An error with a code from the table. The message is safe to show to clients; put anything
 * sensitive in `cause` (logged, never returned).
 */
export class SegserveError extends Error {
  readonly code: ErrorCode;
  readonly details: Readonly<Record<string, unknown>> | undefined;

  constructor(code: ErrorCode, message: string, options: SegserveErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'SegserveError';
    this.code = code;
    this.details = options.details;
  }

  get grpcStatus(): GrpcStatus {
    return GRPC_STATUS[this.code];
  }

  get httpStatus(): number {
    return HTTP_STATUS[this.code];
  }

  toJSON(): { error: { code: ErrorCode; message: string } } {
    return { error: { code: this.code, message: this.message } };
  }
}

export function isSegserveError(err: unknown): err is SegserveError {
  return err instanceof SegserveError;
}

/** Unknown errors become INTERNAL with a generic message; the original stays in `cause`. */
export function toSegserveError(err: unknown): SegserveError {
  if (isSegserveError(err)) return err;
  return new SegserveError('INTERNAL', 'internal error', { cause: err });
}

const GRPC_TO_CODE: Partial<Record<GrpcStatus, ErrorCode>> = {
  [GrpcStatus.INVALID_ARGUMENT]: 'INVALID_INPUT',
  [GrpcStatus.RESOURCE_EXHAUSTED]: 'OVERLOADED',
  [GrpcStatus.NOT_FOUND]: 'MODEL_NOT_FOUND',
  [GrpcStatus.UNAVAILABLE]: 'UNAVAILABLE',
  [GrpcStatus.DEADLINE_EXCEEDED]: 'DEADLINE',
  [GrpcStatus.CANCELLED]: 'UNAVAILABLE',
  [GrpcStatus.UNAUTHENTICATED]: 'UNAUTHENTICATED',
};

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && (ERROR_CODES as readonly string[]).includes(value);
}

/**
 * Parses an upstream gRPC failure once. Prefers the exact code an upstream segserve process put
 * in the `segserve-error-code` trailer; falls back to the status mapping for foreign servers.
 */
export function fromGrpcError(err: { code?: number; details?: string; metadata?: { get(key: string): unknown[] } }): SegserveError {
  const sent = err.metadata?.get(ERROR_CODE_METADATA_KEY)[0];
  const code: ErrorCode = isErrorCode(sent) ? sent : (GRPC_TO_CODE[err.code as GrpcStatus] ?? 'INTERNAL');
  const message = code === 'INTERNAL' ? 'internal error' : (err.details ?? code.toLowerCase());
  return new SegserveError(code, message, { cause: err });
}

/** What a grpc-js handler passes to its callback for a failed call. */
export interface GrpcServerError extends Error {
  readonly code: GrpcStatus;
  readonly details: string;
  readonly metadata: Metadata;
}

/**
 * A SegserveError as a gRPC failure, the same at every gRPC edge: the status from the table, the
 * exact code in the `segserve-error-code` trailer (RESOURCE_EXHAUSTED is both TOO_LARGE and
 * OVERLOADED) and, for OVERLOADED and UNAVAILABLE, `retry-after` as REST sends it.
 */
export function toGrpcServerError(err: SegserveError): GrpcServerError {
  const metadata = new Metadata();
  metadata.set(ERROR_CODE_METADATA_KEY, err.code);
  const retry = RETRY_AFTER_SECONDS[err.code];
  if (retry !== undefined) metadata.set('retry-after', String(retry));
  return Object.assign(new Error(err.message), { name: 'SegserveError', code: err.grpcStatus, details: err.message, metadata });
}
