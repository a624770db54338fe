// Every REST error leaves through here: status, body and Retry-After from the one table
// (docs/architecture.md#errors), whether the error came from upstream, from our checks or from Fastify.
import type { FastifyReply } from 'fastify';
import { HTTP_STATUS, RETRY_AFTER_SECONDS, SegserveError, toSegserveError } from '@segserve/proto';

/** Fastify's own errors (content type, body limit, bad JSON) as table codes. */
export function httpError(err: unknown): SegserveError {
  if (err instanceof SegserveError) return err;
  const e = err as { statusCode?: number; code?: string; message?: string };
  if (typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) {
    if (e.statusCode === 413) return new SegserveError('TOO_LARGE', 'the request body is over the limit', { cause: err });
    if (e.statusCode === 415) return new SegserveError('UNSUPPORTED_MEDIA_TYPE', `unsupported content type; send multipart/form-data with the image in field 'image'`, { cause: err });
    return new SegserveError('INVALID_INPUT', e.message ?? 'bad request', { cause: err });
  }
  return toSegserveError(err);
}

export function sendError(reply: FastifyReply, err: SegserveError, status: number = HTTP_STATUS[err.code]): FastifyReply {
  const retryAfter = RETRY_AFTER_SECONDS[err.code];
  if (retryAfter !== undefined && status === 503) void reply.header('retry-after', String(retryAfter));
  if (err.code === 'UNAUTHENTICATED') void reply.header('www-authenticate', 'Bearer');
  return reply.code(status).type('application/json; charset=utf-8').send(err.toJSON());
}

/**
 * The raw HTTP/1.1 answer to what Node's parser refuses before any route runs (Fastify's
 * clientErrorHandler): 431 for headers over the limit, 408 for a request that did not arrive in
 * time, 400 for anything malformed — each with the table's JSON body. The connection closes.
 */
export function clientErrorResponse(nodeCode: string | undefined): string {
  const [status, reason, err] =
    nodeCode === 'HPE_HEADER_OVERFLOW'
      ? [431, 'Request Header Fields Too Large', new SegserveError('TOO_LARGE', 'the request headers are larger than the server accepts')]
      : nodeCode === 'ERR_HTTP_REQUEST_TIMEOUT'
        ? [408, 'Request Timeout', new SegserveError('DEADLINE', 'the request did not arrive in time')]
        : [400, 'Bad Request', new SegserveError('INVALID_INPUT', 'the request is not valid HTTP')];
  const body = JSON.stringify(err.toJSON());
  return `HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`;
}
