// The Open Inference Protocol (KServe V2 `inference.GRPCInferenceService`) over the same
// service: readiness, metadata and ModelInfer with one FP32 input of the model's exact shape,
// returning the model's raw output as FP32 raw_output_contents.

import type { Metadata, sendUnaryData } from '@grpc/grpc-js';
import type { GRPCInferenceServiceHandlers } from '@segserve/proto';
import type { InferenceService, UploadReservation } from '../service.js';
import { callContext } from './call-context.js';
import { toServiceError } from './errors.js';

export interface OipInfo {
  readonly serverName: string;
  readonly serverVersion: string;
}

/** Runs a synchronous handler body, answering a thrown error through the table. */
function answer<T>(callback: sendUnaryData<T>, body: () => T): void {
  let value: T;
  try {
    value = body();
  } catch (err) {
    callback(toServiceError(err));
    return;
  }
  callback(null, value);
}

/** `uploadOf` as in segmenter.ts: the edge's reservation, adopted by the request. */
export function oipHandlers(service: InferenceService, info: OipInfo, uploadOf: (metadata: Metadata) => UploadReservation | undefined = () => undefined): GRPCInferenceServiceHandlers {
  return {
    ServerLive: (_call, callback) => callback(null, { live: true }),
    ServerReady: (_call, callback) => callback(null, { ready: service.state === 'serving' }),
    ModelReady: (call, callback) => answer(callback, () => ({ ready: service.modelReady(call.request.name, call.request.version) })),
    ServerMetadata: (_call, callback) => callback(null, { name: info.serverName, version: info.serverVersion, extensions: [] }),
    ModelMetadata: (call, callback) =>
      answer(callback, () => {
        const m = service.modelFor(call.request.name, call.request.version);
        return {
          name: m.name,
          versions: [m.version],
          platform: 'onnxruntime_onnx',
          inputs: [{ name: m.input.name, datatype: 'FP32', shape: m.input.shape.map(String) }],
          outputs: [{ name: m.output.name, datatype: 'FP32', shape: m.output.shape.map(String) }],
        };
      }),
    ModelInfer: (call, callback) => {
      const upload = uploadOf(call.metadata);
      const ctx = { ...callContext(call, 'ModelInfer'), ...(upload ? { upload } : {}) };
      service.infer(call.request, ctx).then(
        (r) => {
          ctx.done();
          const data = r.output.data;
          callback(null, {
            model_name: r.model.name,
            model_version: r.model.version,
            id: r.id,
            outputs: [{ name: r.model.output.name, datatype: 'FP32', shape: r.output.dims.map(String) }],
            // Little-endian float32, as the protocol specifies; a view, not a copy.
            raw_output_contents: [Buffer.from(data.buffer, data.byteOffset, data.byteLength)],
          });
        },
        (err: unknown) => {
          ctx.done();
          callback(toServiceError(err));
        },
      );
    },
  };
}
