import { describe, expect, it } from 'vitest';
import { SegserveError } from '@segserve/proto';
import { httpError } from './errors.js';

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
