import { describe, expect, it } from 'vitest';
import { decideCharge, type LedgerState } from '@segserve/runtime';
import { FORM_OVERHEAD_BYTES, gatewayChargePolicy, LARGE_UPLOADS_AT_ONCE, restDoor, uploadChargeBytes } from './upload-charge.js';

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

describe('gatewayChargePolicy', () => {
  // The gateway of a 512 MiB pod: about 320 MiB of budget; 26 MB uploads are large, photographs are not.
  const capacity = 320 * 2 ** 20;
  const policy = gatewayChargePolicy(capacity);
  const big = 26_000_000;
  const held = (large: number, small = 0): LedgerState => ({ capacity, held: large * big + small, heldLarge: large * big, largeCount: large });
  it.each([
    ['the first 26 MB upload', held(0), big, 'admit'],
    ['the second', held(1), big, 'admit'],
    ['a third waits, though the budget and the large share have room for it', held(2), big, 'wait'],
    ['a photograph beside two 26 MB uploads', held(2, 5_000_000), 300_000, 'admit'],
    ['the largest upload alone', held(0), 32 * 2 ** 20 - 4096, 'admit'],
  ] as const)('%s → %s', (_name, state, bytes, kind) => {
    expect(decideCharge(state, { bytes, clientHeld: 0 }, policy).kind).toBe(kind);
  });

  it('keeps the shared default otherwise', () => {
    expect(policy).toMatchObject({ largeBytes: capacity / 16, largeShare: 0.5, clientShare: 0.75, largeAtOnce: LARGE_UPLOADS_AT_ONCE });
  });
});
