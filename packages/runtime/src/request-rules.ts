// Wire rules (wire-scan.ts) for the requests segserve's gRPC edges decode: how many values each
// field of a SegmentRequest and of an Open Inference Protocol ModelInferRequest may carry before
// the message is decoded. Field numbers are those of proto/segserve/v1/segmenter.proto and
// proto/inference/grpc_predict_v2.proto.
import type { FieldRule, MessageRule } from './wire-scan.js';

/** A singular field: proto3 lets an encoder send it more than once (the last wins), never many times in practice. */
const SINGULAR = 4;

const one = (name: string, extra: Partial<FieldRule> = {}): FieldRule => ({ name, max: SINGULAR, ...extra });

export const SEGMENT_REQUEST_RULE: MessageRule = {
  name: 'SegmentRequest',
  fields: { 1: one('model'), 2: one('version'), 3: one('image'), 4: one('mask_format') },
};

export interface OipBounds {
  /** Input tensors (and requested outputs, and raw_input_contents entries). */
  readonly tensors: number;
  /** Dims of one tensor's shape. */
  readonly dims: number;
  /** Entries of one `parameters` map. */
  readonly parameters: number;
  /** fp32_contents values of one input. */
  readonly fp32Values: number;
  /** Values of every other typed-contents field of one input (bool, int, bytes…). */
  readonly otherValues: number;
}

/** Bounds that hold for any model (the gateway: it forwards requests without decoding them). */
export const GENERIC_OIP_BOUNDS: OipBounds = { tensors: 16, dims: 16, parameters: 64, fp32Values: Number.MAX_SAFE_INTEGER, otherValues: Number.MAX_SAFE_INTEGER };

function parametersRule(max: number): FieldRule {
  const value: MessageRule = { name: 'InferParameter', fields: { 1: one('bool_param'), 2: one('int64_param'), 3: one('string_param') } };
  return { name: 'parameters', max, message: { name: 'parameters entry', fields: { 1: one('key'), 2: one('value', { message: value }) } } };
}

export function modelInferRequestRule(b: OipBounds): MessageRule {
  // Where a model takes FP32 only, every other kind of value is refused before it is decoded.
  const why = b.otherValues === 0 ? 'the model takes FP32 values (fp32_contents or raw_input_contents)' : undefined;
  const other = (name: string, packed?: FieldRule['packed']): FieldRule => ({ name, max: b.otherValues, ...(packed ? { packed } : {}), ...(why ? { why } : {}) });
  const contents: MessageRule = {
    name: 'InferTensorContents',
    fields: {
      1: other('bool_contents', 'varint'),
      2: other('int_contents', 'varint'),
      3: other('int64_contents', 'varint'),
      4: other('uint_contents', 'varint'),
      5: other('uint64_contents', 'varint'),
      6: { name: 'fp32_contents', max: b.fp32Values, packed: 'fixed32' },
      7: other('fp64_contents', 'fixed64'),
      8: other('bytes_contents'),
    },
  };
  const input: MessageRule = {
    name: 'InferInputTensor',
    fields: { 1: one('name'), 2: one('datatype'), 3: { name: 'shape', max: b.dims, packed: 'varint' }, 4: parametersRule(b.parameters), 5: one('contents', { message: contents }) },
  };
  const output: MessageRule = { name: 'InferRequestedOutputTensor', fields: { 1: one('name'), 2: parametersRule(b.parameters) } };
  return {
    name: 'ModelInferRequest',
    fields: {
      1: one('model_name'),
      2: one('model_version'),
      3: one('id'),
      4: parametersRule(b.parameters),
      5: { name: 'inputs', max: b.tensors, message: input },
      6: { name: 'outputs', max: b.tensors, message: output },
      7: { name: 'raw_input_contents', max: b.tensors },
    },
  };
}
