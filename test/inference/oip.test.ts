// The Open Inference Protocol as a stock KServe/Triton client sees it: a plain grpc-js client
// built only from proto/inference/grpc_predict_v2.proto (no segserve code), against a real
// server. ModelInfer output equals a direct session.run; every malformed request is
// INVALID_ARGUMENT, never INTERNAL (docs/reliability.md item 11); unknown models are NOT_FOUND (12).

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import path from 'node:path';
import { REPO_ROOT } from '../helpers/process.js';
import { MODELS, call, directRun, manifestOf, parseSample, startTestServer, type TestServer } from './helpers.js';

let server: TestServer;
let client: grpc.Client;

beforeAll(async () => {
  server = await startTestServer({ model: MODELS.seg });
  const def = protoLoader.loadSync(path.join(REPO_ROOT, 'proto', 'inference', 'grpc_predict_v2.proto'), { keepCase: true, longs: String, enums: String, defaults: true });
  const pkg = grpc.loadPackageDefinition(def) as unknown as { inference: { GRPCInferenceService: typeof grpc.Client } };
  client = new pkg.inference.GRPCInferenceService(server.target, grpc.credentials.createInsecure());
});

afterAll(async () => {
  client.close();
  await server.stop();
});

const m = manifestOf(MODELS.seg);
const shape = [1, 3, m.input.height, m.input.width];
const elements = shape.reduce((a, b) => a * b, 1);
const input = Float32Array.from({ length: elements }, (_, i) => Math.sin(i / 37) * 2);
const rawOf = (f: Float32Array): Buffer => Buffer.from(f.buffer, f.byteOffset, f.byteLength);

interface InferResponse {
  model_name: string;
  model_version: string;
  id: string;
  outputs: { name: string; datatype: string; shape: string[] }[];
  raw_output_contents: Buffer[];
}

function infer(req: Record<string, unknown>): ReturnType<typeof call<unknown, InferResponse>> {
  return call<unknown, InferResponse>(client, 'ModelInfer', { model_name: 'tiny-seg', ...req });
}

const tensor = (over: Record<string, unknown> = {}): Record<string, unknown> => ({ name: 'input', datatype: 'FP32', shape: shape.map(String), ...over });

describe('Open Inference Protocol', () => {
  it('answers liveness, readiness and metadata', async () => {
    expect((await call(client, 'ServerLive', {})).value).toEqual({ live: true });
    expect((await call(client, 'ServerReady', {})).value).toEqual({ ready: true });
    expect((await call(client, 'ModelReady', { name: 'tiny-seg', version: '' })).value).toEqual({ ready: true });
    expect((await call(client, 'ModelReady', { name: 'tiny-seg', version: '1' })).value).toEqual({ ready: true });
    const meta = await call<unknown, { name: string; extensions: string[] }>(client, 'ServerMetadata', {});
    expect(meta.value?.name).toBe('segserve-inference');
    const mm = await call(client, 'ModelMetadata', { name: 'tiny-seg', version: '' });
    expect(mm.value).toEqual({
      name: 'tiny-seg',
      versions: ['1'],
      platform: 'onnxruntime_onnx',
      inputs: [{ name: 'input', datatype: 'FP32', shape: ['1', '3', '64', '96'] }],
      outputs: [{ name: 'logits', datatype: 'FP32', shape: ['1', '2', '64', '96'] }],
    });
  });

  it('ModelInfer with raw_input_contents returns the logits of a direct session.run', async () => {
    const r = await infer({ id: 'req-7', inputs: [tensor()], raw_input_contents: [rawOf(input)] });
    expect(r.error?.details).toBeUndefined();
    const v = r.value!;
    expect([v.model_name, v.model_version, v.id]).toEqual(['tiny-seg', '1', 'req-7']);
    expect(v.outputs).toEqual([{ name: 'logits', datatype: 'FP32', shape: ['1', '2', '64', '96'], parameters: {}, contents: null }]);
    const raw = v.raw_output_contents[0]!;
    const got = new Float32Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength));
    const expected = await directRun(MODELS.seg, input.slice());
    expect(Array.from(got)).toEqual(Array.from(expected.data));
  });

  it('ModelInfer with typed fp32_contents gives the same output', async () => {
    const typed = await infer({ inputs: [tensor({ contents: { fp32_contents: Array.from(input) } })], outputs: [{ name: 'logits' }] });
    const raw = await infer({ inputs: [tensor()], raw_input_contents: [rawOf(input)] });
    expect(typed.error?.details).toBeUndefined();
    expect(typed.value!.raw_output_contents[0]!.equals(raw.value!.raw_output_contents[0]!)).toBe(true);
  });

  it.each<[string, Record<string, unknown>, RegExp]>([
    ['wrong shape', { inputs: [tensor({ shape: ['1', '3', '32', '96'] })], raw_input_contents: [rawOf(input.subarray(0, elements / 2))] }, /does not match/],
    ['wrong rank', { inputs: [tensor({ shape: ['3', '64', '96'] })], raw_input_contents: [rawOf(input)] }, /does not match/],
    ['wrong datatype', { inputs: [tensor({ datatype: 'FP64' })], raw_input_contents: [rawOf(input)] }, /datatype 'FP64'/],
    ['wrong byte length', { inputs: [tensor()], raw_input_contents: [rawOf(input).subarray(0, 100)] }, /has 100 bytes/],
    ['negative dims', { inputs: [tensor({ shape: ['1', '3', '-64', '96'] })], raw_input_contents: [rawOf(input)] }, /negative/],
    ['overflowing dims', { inputs: [tensor({ shape: ['1', '3', '9223372036854775807', '96'] })], raw_input_contents: [rawOf(input)] }, /too large/],
    ['raw and typed contents together', { inputs: [tensor({ contents: { fp32_contents: [1, 2, 3] } })], raw_input_contents: [rawOf(input)] }, /must not both be set/],
    // Refused by the edge before decoding: the model takes FP32 values only.
    ['typed contents of another type', { inputs: [tensor({ contents: { int_contents: [1, 2, 3] } })] }, /int_contents has more than 0 values: the model takes FP32/],
    ['20,000 empty inputs', { inputs: Array.from({ length: 20_000 }, () => ({})) }, /inputs has more than 16 values/],
    ['too few typed values', { inputs: [tensor({ contents: { fp32_contents: [1, 2, 3] } })] }, /has 3 values/],
    ['no contents', { inputs: [tensor()] }, /no contents/],
    ['wrong input name', { inputs: [tensor({ name: 'image' })], raw_input_contents: [rawOf(input)] }, /unknown input 'image'/],
    ['two inputs', { inputs: [tensor(), tensor()], raw_input_contents: [rawOf(input)] }, /exactly 1 input/],
    ['unknown requested output', { inputs: [tensor()], raw_input_contents: [rawOf(input)], outputs: [{ name: 'probs' }] }, /unknown output 'probs'/],
  ])('%s → INVALID_ARGUMENT', async (_name, req, details) => {
    const r = await infer(req);
    expect(r.error?.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(r.code).toBe('INVALID_INPUT');
    expect(r.error?.details).toMatch(details);
  });

  it('a message larger than the input tensor and its envelope → TOO_LARGE, before it is buffered', async () => {
    const r = await infer({ inputs: [tensor()], raw_input_contents: [rawOf(input), rawOf(input)] });
    expect(r.error?.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    expect(r.code).toBe('TOO_LARGE');
  });

  it.each<[string, string, Record<string, unknown>]>([
    ['ModelInfer', 'ModelInfer', { model_name: 'other', inputs: [tensor()], raw_input_contents: [rawOf(input)] }],
    ['ModelInfer, unknown version', 'ModelInfer', { model_name: 'tiny-seg', model_version: '9', inputs: [tensor()], raw_input_contents: [rawOf(input)] }],
    ['ModelReady', 'ModelReady', { name: 'other', version: '' }],
    ['ModelMetadata', 'ModelMetadata', { name: 'tiny-seg', version: '2' }],
  ])('unknown model or version in %s → NOT_FOUND', async (_name, method, req) => {
    const r = await call(client, method, req);
    expect(r.error?.code).toBe(grpc.status.NOT_FOUND);
    expect(r.code).toBe('MODEL_NOT_FOUND');
  });

  it('counts invalid requests by code, and never as INTERNAL', async () => {
    const text = await server.metrics();
    expect(parseSample(text, 'segserve_inference_requests_total', { model: 'tiny-seg', version: '1', code: 'INVALID_INPUT' })).toBeGreaterThanOrEqual(13);
    expect(parseSample(text, 'segserve_inference_requests_total', { model: 'tiny-seg', version: '1', code: 'INTERNAL' })).toBeUndefined();
  });
});
