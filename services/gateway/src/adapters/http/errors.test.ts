import { describe, expect, it } from 'vitest';
import { SegserveError } from '@segserve/proto';
import { clientErrorResponse, httpError } from './errors.js';

describe('httpError: framework errors onto the table', () => {
  it.each([
    [{ statusCode: 413, code: 'FST_ERR_CTP_BODY_TOO_LARGE', message: 'x' }, 'TOO_LARGE'],
    [{ statusCode: 415, code: 'FST_ERR_CTP_INVALID_MEDIA_TYPE', message: 'x' }, 'UNSUPPORTED_MEDIA_TYPE'],
    [{ statusCode: 400, code: 'FST_ERR_CTP_INVALID_JSON_BODY', message: 'bad json' }, 'INVALID_INPUT'],
    [new Error('something broke'), 'INTERNAL'],
    [{ statusCode: 500, message: 'x' }, 'INTERNAL'],
  ])('%# → %s', (err, code) => {
    expect(httpError(err).code).toBe(code);
  });

  it('keeps SegserveErrors as they are', () => {
    const e = new SegserveError('DEADLINE', 'late');
    expect(httpError(e)).toBe(e);
  });
});

describe('clientErrorResponse: what the HTTP parser refuses, in the table', () => {
  it.each([
    ['HPE_HEADER_OVERFLOW', 431, 'TOO_LARGE'],
    ['ERR_HTTP_REQUEST_TIMEOUT', 408, 'DEADLINE'],
    ['HPE_INVALID_METHOD', 400, 'INVALID_INPUT'],
    [undefined, 400, 'INVALID_INPUT'],
  ])('%s → %i %s', (nodeCode, status, code) => {
    const raw = clientErrorResponse(nodeCode);
    const [head, body] = raw.split('\r\n\r\n');
    expect(head).toMatch(new RegExp(`^HTTP/1\\.1 ${status} `));
    expect(head).toContain(`Content-Length: ${Buffer.byteLength(body ?? '')}`);
    expect(JSON.parse(body ?? '')).toMatchObject({ error: { code } });
  });
});
