// Open Inference Protocol (KServe V2) ModelInfer request → the model's input tensor. Every way a
// request can be malformed is the client's fault and answers INVALID_INPUT (INVALID_ARGUMENT),
// never INTERNAL (docs/reliability.md item 11): shape, datatype, byte length, negative or huge dims, and
// raw and typed contents given together.

import { SegserveError, type ModelInferRequest__Output } from '@segserve/proto';

export interface TensorSpec {
  readonly name: string;
  /** Fixed dims; the model's input is always [1, 3, height, width]. */
  readonly shape: readonly number[];
}

const invalid = (message: string): SegserveError => new SegserveError('INVALID_INPUT', message);

/** Parses int64 dims sent as decimal strings; rejects negative and absurdly large ones. */
export function parseShape(dims: readonly string[]): number[] {
  return dims.map((d, i) => {
    if (!/^-?\d+$/.test(d)) throw invalid(`shape[${i}] '${d}' is not an integer`);
    const v = BigInt(d);
    if (v < 0n) throw invalid(`shape[${i}] is negative (${d})`);
    if (v > 2n ** 31n) throw invalid(`shape[${i}] is too large (${d})`);
    return Number(v);
  });
}

type Contents = NonNullable<ModelInferRequest__Output['inputs'][number]['contents']>;

function typedFieldsUsed(c: Contents): string[] {
  return (Object.keys(c) as (keyof Contents)[]).filter((k) => Array.isArray(c[k]) && c[k].length > 0);
}

/**
 * The single FP32 input of the model, as a fresh Float32Array the caller may hand to the runtime.
 * `outputName` is the only output a request may ask for.
 */
export function parseInferInput(req: Pick<ModelInferRequest__Output, 'inputs' | 'raw_input_contents' | 'outputs'>, spec: TensorSpec, outputName: string): Float32Array {
  if (req.inputs.length !== 1) throw invalid(`expected exactly 1 input tensor '${spec.name}', got ${req.inputs.length}`);
  const input = req.inputs[0]!;
  if (input.name !== spec.name) throw invalid(`unknown input '${input.name}'; the model's input is '${spec.name}'`);
  if (input.datatype !== 'FP32') throw invalid(`input '${spec.name}' has datatype '${input.datatype}'; the model takes FP32`);
  const shape = parseShape(input.shape);
  if (shape.length !== spec.shape.length || shape.some((d, i) => d !== spec.shape[i])) {
    throw invalid(`input shape [${shape.join(',')}] does not match the model's [${spec.shape.join(',')}]`);
  }
  for (const o of req.outputs) {
    if (o.name !== outputName) throw invalid(`unknown output '${o.name}'; the model's output is '${outputName}'`);
  }
  const elements = spec.shape.reduce((a, b) => a * b, 1);
  const typed = input.contents ? typedFieldsUsed(input.contents) : [];
  const raw = req.raw_input_contents;
  if (raw.length > 0 && typed.length > 0) throw invalid('raw_input_contents and typed contents must not both be set');
  if (raw.length > 1) throw invalid(`expected 1 raw_input_contents entry, got ${raw.length}`);
  if (raw.length === 1) {
    const bytes = raw[0]!;
    if (bytes.length !== elements * 4) throw invalid(`raw_input_contents has ${bytes.length} bytes; FP32 [${spec.shape.join(',')}] needs ${elements * 4}`);
    // One copy: the wire buffer need not be 4-byte aligned, and the tensor is handed off later.
    const out = new Float32Array(elements);
    new Uint8Array(out.buffer).set(bytes);
    return out;
  }
  if (typed.length === 0) throw invalid(`input '${spec.name}' has no contents`);
  if (typed.length > 1 || typed[0] !== 'fp32_contents') throw invalid(`input '${spec.name}' is FP32 but carries ${typed.join(', ')}`);
  const values = input.contents!.fp32_contents;
  if (values.length !== elements) throw invalid(`fp32_contents has ${values.length} values; [${spec.shape.join(',')}] needs ${elements}`);
  return Float32Array.from(values);
}
