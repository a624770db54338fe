import { describe, expect, it } from 'vitest';
import { FORM_OVERHEAD_BYTES, restDoor, uploadChargeBytes } from './upload-charge.js';

const MAX = 32 * 1024 * 1024 - 4096;

describe('restDoor', () => {
  it.each([
    ['a photograph', '150000', { kind: 'charge', bytes: 150_000 }],
    ['the largest image with its form', String(MAX + FORM_OVERHEAD_BYTES), { kind: 'charge', bytes: MAX }],
    ['one byte more', String(MAX + FORM_OVERHEAD_BYTES + 1), { kind: 'too-large', declared: MAX + FORM_OVERHEAD_BYTES + 1 }],
    ['26 MB', '26000000', { kind: 'charge', bytes: 26_000_000 }],
    ['no Content-Length (chunked)', undefined, { kind: 'unknown' }],
    ['a Content-Length that is not a number', '12abc', { kind: 'unknown' }],
    ['a negative one', '-5', { kind: 'unknown' }],
  ] as const)('%s', (_name, header, expected) => {
    expect(restDoor(header, MAX)).toEqual(expected);
  });
});

describe('uploadChargeBytes', () => {
  it('is one copy of a REST upload, three of a gRPC one', () => {
    expect(uploadChargeBytes('rest', 1000)).toBe(1000);
    expect(uploadChargeBytes('grpc', 1000)).toBe(3000);
  });
});
