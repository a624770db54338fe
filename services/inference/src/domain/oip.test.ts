import { describe, expect, it } from 'vitest';
import type { ModelInferRequest__Output } from '@segserve/proto';
import { parseInferInput, parseShape } from './oip.js';

const spec = { name: 'input', shape: [1, 3, 2, 2] };
type Req = Pick<ModelInferRequest__Output, 'inputs' | 'raw_input_contents' | 'outputs'>;
type Contents = NonNullable<ModelInferRequest__Output['inputs'][number]['contents']>;

const emptyContents = (): Contents => ({ bool_contents: [], int_contents: [], int64_contents: [], uint_contents: [], uint64_contents: [], fp32_contents: [], fp64_contents: [], bytes_contents: [] });
const values = Array.from({ length: 12 }, (_, i) => i / 2);
const raw = Buffer.from(Float32Array.from(values).buffer);

function request(over: { name?: string; datatype?: string; shape?: string[]; contents?: Partial<Contents> | null; raw?: Buffer[]; outputs?: string[]; inputs?: number } = {}): Req {
  const input = {
    name: over.name ?? 'input',
    datatype: over.datatype ?? 'FP32',
    shape: over.shape ?? ['1', '3', '2', '2'],
    parameters: {},
    contents: over.contents === null ? null : { ...emptyContents(), ...(over.contents ?? {}) },
  };
  return {
    inputs: Array.from({ length: over.inputs ?? 1 }, () => input),
    raw_input_contents: over.raw ?? [raw],
    outputs: (over.outputs ?? []).map((name) => ({ name, parameters: {} })),
  };
}

describe('parseInferInput', () => {
  it('accepts raw little-endian FP32 contents', () => {
    expect(Array.from(parseInferInput(request(), spec, 'logits'))).toEqual(values);
  });

  it('accepts raw contents at an odd byte offset', () => {
    const shifted = Buffer.concat([Buffer.from([0]), raw]).subarray(1);
    expect(Array.from(parseInferInput(request({ raw: [shifted] }), spec, 'logits'))).toEqual(values);
  });

  it('accepts typed fp32_contents', () => {
    expect(Array.from(parseInferInput(request({ raw: [], contents: { fp32_contents: values } }), spec, 'logits'))).toEqual(values);
  });

  it('accepts the model output as the requested output', () => {
    expect(parseInferInput(request({ outputs: ['logits'] }), spec, 'logits')).toHaveLength(12);
  });

  it.each<[string, Req, RegExp]>([
    ['no inputs', request({ inputs: 0 }), /exactly 1 input/],
    ['two inputs', request({ inputs: 2 }), /exactly 1 input/],
    ['wrong input name', request({ name: 'x' }), /unknown input 'x'/],
    ['wrong datatype', request({ datatype: 'FP16' }), /datatype 'FP16'/],
    ['wrong rank', request({ shape: ['3', '2', '2'] }), /does not match/],
    ['wrong dims', request({ shape: ['1', '3', '2', '3'] }), /does not match/],
    ['negative dim', request({ shape: ['1', '3', '-2', '2'] }), /negative/],
    ['overflowing dim', request({ shape: ['1', '3', '9223372036854775807', '2'] }), /too large/],
    ['short raw bytes', request({ raw: [raw.subarray(4)] }), /has 44 bytes/],
    ['long raw bytes', request({ raw: [Buffer.concat([raw, Buffer.alloc(4)])] }), /has 52 bytes/],
    ['two raw entries', request({ raw: [raw, raw] }), /1 raw_input_contents/],
    ['raw and typed together', request({ contents: { fp32_contents: values } }), /must not both be set/],
    ['no contents at all', request({ raw: [], contents: null }), /no contents/],
    ['typed with the wrong type', request({ raw: [], contents: { int_contents: [1] } }), /carries int_contents/],
    ['typed with too few values', request({ raw: [], contents: { fp32_contents: [1, 2] } }), /has 2 values/],
    ['unknown requested output', request({ outputs: ['probs'] }), /unknown output 'probs'/],
  ])('rejects %s as INVALID_INPUT', (_name, req, message) => {
    expect(() => parseInferInput(req, spec, 'logits')).toThrow(expect.objectContaining({ code: 'INVALID_INPUT', message: expect.stringMatching(message) }) as Error);
  });
});

describe('parseShape', () => {
  it.each<[string[], number[] | RegExp]>([
    [['1', '3', '64', '96'], [1, 3, 64, 96]],
    [['0'], [0]],
    [['1.5'], /not an integer/],
    [['abc'], /not an integer/],
    [['-1'], /negative/],
    [['18446744073709551615'], /too large/],
  ])('%j', (dims, expected) => {
    if (expected instanceof RegExp) expect(() => parseShape(dims)).toThrow(expected);
    else expect(parseShape(dims)).toEqual(expected);
  });
});
