import { describe, expect, it } from 'vitest';
import { encodeLengthDelimitedHead, encodeStringField, encodeVarintField, lastString, scanMessage, WireScanError, type MessageRule } from './wire-scan.js';
import { GENERIC_OIP_BOUNDS, modelInferRequestRule, SEGMENT_REQUEST_RULE } from './request-rules.js';

// Hand-written wire bytes: the point is messages a well-behaved encoder would never write.
const varint = (n: number): number[] => {
  const out: number[] = [];
  do {
    out.push((n & 0x7f) | (n >= 0x80 ? 0x80 : 0));
    n = Math.floor(n / 128);
  } while (n > 0);
  return out;
};
const ld = (field: number, bytes: Buffer | number[]): Buffer => Buffer.concat([Buffer.from(varint((field << 3) | 2)), Buffer.from(varint(bytes.length)), Buffer.from(bytes)]);
const str = (field: number, s: string): Buffer => ld(field, Buffer.from(s));
const times = (b: Buffer, n: number): Buffer => Buffer.alloc(b.length * n, b);

const OIP = modelInferRequestRule(GENERIC_OIP_BOUNDS);
const MODEL_OIP = modelInferRequestRule({ tensors: 16, dims: 16, parameters: 64, fp32Values: 6, otherValues: 0 });
const input = (...parts: Buffer[]): Buffer => ld(5, Buffer.concat(parts));

function problem(buf: Buffer, rule: MessageRule): string {
  try {
    scanMessage(buf, rule);
    return 'ok';
  } catch (err) {
    if (err instanceof WireScanError) return `${err.problem}: ${err.message}`;
    throw err;
  }
}

describe('scanMessage', () => {
  it.each([
    ['an empty message', Buffer.alloc(0), OIP, 'ok'],
    ['a valid request: 1 input, packed shape, raw contents', Buffer.concat([str(1, 'm'), input(str(1, 'input'), str(2, 'FP32'), ld(3, [1, 3, 2])), ld(7, Buffer.alloc(24))]), OIP, 'ok'],
    ['16 empty inputs', times(ld(5, []), 16), OIP, 'ok'],
    ['17 empty inputs', times(ld(5, []), 17), OIP, 'too-many: ModelInferRequest.inputs has more than 16 values'],
    ['1,000,000 empty inputs (stops at the 17th)', times(ld(5, []), 1_000_000), OIP, 'too-many: ModelInferRequest.inputs has more than 16 values'],
    ['17 packed shape dims', input(ld(3, Buffer.alloc(17, 1))), OIP, 'too-many: ModelInferRequest.inputs.shape has more than 16 values'],
    ['17 unpacked shape dims', input(times(Buffer.from([0x18, 0x01]), 17)), OIP, 'too-many: ModelInferRequest.inputs.shape has more than 16 values'],
    ['17 empty raw_input_contents', times(ld(7, []), 17), OIP, 'too-many: ModelInferRequest.raw_input_contents has more than 16 values'],
    ['65 parameters entries', times(ld(4, []), 65), OIP, 'too-many: ModelInferRequest.parameters has more than 64 values'],
    ['fp32 values within the model bound', input(ld(5, ld(6, Buffer.alloc(24)))), MODEL_OIP, 'ok'],
    ['one fp32 value over the model bound', input(ld(5, ld(6, Buffer.alloc(28)))), MODEL_OIP, 'too-many: ModelInferRequest.inputs.contents.fp32_contents has more than 6 values'],
    ['bool contents where the model takes FP32 only', input(ld(5, ld(1, [1]))), MODEL_OIP, 'too-many: ModelInferRequest.inputs.contents.bool_contents has more than 0 values: the model takes FP32 values (fp32_contents or raw_input_contents)'],
    ['a packed fp32 run that is not a multiple of 4', input(ld(5, ld(6, Buffer.alloc(5)))), OIP, 'malformed: ModelInferRequest.inputs.contents.fp32_contents: packed fixed32 run of 5 bytes'],
    ['a length past the end', Buffer.from([0x0a, 0x10, 0x61]), OIP, 'malformed: ModelInferRequest.model_name: length 16 runs past the end of the message'],
    ['wire type 7', Buffer.concat([str(1, 'fac'), Buffer.from([0x0f, 0x00])]), OIP, 'malformed: ModelInferRequest.model_name: wire type 7 is not used by this API'],
    ['a group (wire type 3)', Buffer.from([0x0b, 0x0c]), OIP, 'malformed: ModelInferRequest.model_name: wire type 3 is not used by this API'],
    ['field number 0', Buffer.from([0x02, 0x00]), OIP, 'malformed: ModelInferRequest: field number 0'],
    ['a varint over 10 bytes', Buffer.from([0x08, ...Array(11).fill(0xff), 0x01]), OIP, 'malformed: ModelInferRequest.model_name: varint longer than 10 bytes'],
    ['a truncated fixed64', Buffer.from([0x09, 1, 2, 3]), OIP, 'malformed: ModelInferRequest.model_name: truncated value'],
    ['unknown fields are skipped, any number of them', times(Buffer.from([0xf8, 0x01, 0x00]), 10_000), OIP, 'ok'],
    ['SegmentRequest: model, image, mask_format', Buffer.concat([str(1, 'm'), ld(3, Buffer.alloc(1000)), Buffer.from([0x20, 0x01])]), SEGMENT_REQUEST_RULE, 'ok'],
    ['SegmentRequest: the image field 5 times', times(ld(3, []), 5), SEGMENT_REQUEST_RULE, 'too-many: SegmentRequest.image has more than 4 values'],
  ] as const)('%s → %s', (_name, buf, rule, expected) => {
    expect(problem(buf, rule)).toBe(expected);
  });
});

describe('top-level string fields', () => {
  it('reads the last value and lets an appended field override it', () => {
    const msg = Buffer.concat([str(1, 'model'), str(2, 'v1'), ld(5, [])]);
    expect(lastString(msg, 2)).toBe('v1');
    expect(lastString(msg, 3)).toBe('');
    expect(lastString(Buffer.concat([msg, encodeStringField(2, 'v2')]), 2)).toBe('v2');
    const long = 'x'.repeat(300);
    expect(lastString(encodeStringField(2, long), 2)).toBe(long);
  });
});

describe('field encoders', () => {
  it('write what the scanner reads back', () => {
    const image = Buffer.alloc(300, 7);
    const msg = Buffer.concat([encodeStringField(1, 'm'), encodeVarintField(4, 1), encodeLengthDelimitedHead(3, image.length), image]);
    expect(problem(msg, SEGMENT_REQUEST_RULE)).toBe('ok');
    expect(lastString(msg, 1)).toBe('m');
    expect(encodeLengthDelimitedHead(3, 300)).toEqual(Buffer.from([0x1a, 0xac, 0x02]));
    expect(encodeVarintField(4, 1)).toEqual(Buffer.from([0x20, 0x01]));
  });
});
