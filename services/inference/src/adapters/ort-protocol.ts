// Messages between the main thread and the onnxruntime worker threads. onnxruntime-node's
// run() is synchronous under its Promise (it blocks the thread it runs on for the whole
// inference), so sessions live in workers and the event loop stays free for gRPC, health
// checks and fast OVERLOADED answers.

import type { OrtSettings } from '../config.js';
import type { GraphValue } from '../domain/model.js';

export interface InitMessage {
  readonly type: 'init';
  readonly onnx: Uint8Array;
  readonly settings: OrtSettings;
}

export interface RunMessage {
  readonly type: 'run';
  readonly id: number;
  readonly input: Float32Array;
  readonly inputName: string;
  readonly dims: readonly number[];
  readonly outputName: string;
}

export type ToWorker = InitMessage | RunMessage;

export type FromWorker =
  | { readonly type: 'ready'; readonly inputs: readonly GraphValue[]; readonly outputs: readonly GraphValue[] }
  | { readonly type: 'failed'; readonly message: string }
  | { readonly type: 'result'; readonly id: number; readonly data: Float32Array; readonly dims: readonly number[] }
  | { readonly type: 'error'; readonly id: number; readonly message: string };
