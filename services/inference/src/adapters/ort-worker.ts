// One onnxruntime session on its own thread (see ort-protocol.ts for why). Receives the model
// bytes once, then runs one request at a time; buffers move by transfer, not copy.

import ort from 'onnxruntime-node';
import { parentPort } from 'node:worker_threads';
import { classMapCounted } from '../domain/mask.js';
import { TensorBuilder } from '../domain/tensor.js';
import type { GraphValue } from '../domain/model.js';
import type { FromWorker, InitMessage, ToWorker, WorkerTimings } from './ort-protocol.js';

const port = parentPort;
if (!port) throw new Error('ort-worker.js must run in a worker thread');

interface Loaded {
  readonly session: ort.InferenceSession;
  readonly init: InitMessage;
  /** Builds the Segment input tensor in place for every request. */
  readonly builder: TensorBuilder;
}

let loaded: Loaded | undefined;

const post = (msg: FromWorker, transfer: ArrayBuffer[] = []): void => port.postMessage(msg, transfer);

function graphValues(meta: readonly ort.InferenceSession.ValueMetadata[]): GraphValue[] {
  return meta.map((m) => (m.isTensor ? { name: m.name, type: m.type, shape: [...m.shape] } : { name: m.name, type: 'non-tensor', shape: [] }));
}

async function runGraph(l: Loaded, input: Float32Array): Promise<ort.Tensor> {
  const { io } = l.init;
  const out = await l.session.run({ [io.inputName]: new ort.Tensor('float32', input, io.dims) }, [io.outputName]);
  const t = out[io.outputName];
  if (!t || t.type !== 'float32') throw new Error(`output '${io.outputName}' missing or not float32`);
  return t;
}

async function handle(l: Loaded, msg: Exclude<ToWorker, InitMessage>): Promise<void> {
  const t0 = performance.now();
  if (msg.type === 'run') {
    const t = await runGraph(l, msg.input);
    const data = t.data as Float32Array;
    const ms: WorkerTimings = { preprocess: 0, infer: performance.now() - t0, postprocess: 0 };
    post({ type: 'result', id: msg.id, data, dims: t.dims, ms }, [data.buffer as ArrayBuffer]);
    return;
  }
  const tensor = l.builder.from(l.init.rgb);
  const t1 = performance.now();
  const t = await runGraph(l, tensor);
  const t2 = performance.now();
  const [, channels, oh, ow] = t.dims as [number, number, number, number];
  const { mask: classes, counts } = classMapCounted(t.data as Float32Array, channels, oh * ow, l.init.segment.output);
  t.dispose();
  const ms: WorkerTimings = { preprocess: t1 - t0, infer: t2 - t1, postprocess: performance.now() - t2 };
  post({ type: 'classes', id: msg.id, classes, counts, width: ow, height: oh, ms }, [classes.buffer as ArrayBuffer, counts.buffer as ArrayBuffer]);
}

port.on('message', (msg: ToWorker) => {
  if (msg.type === 'init') {
    ort.InferenceSession.create(msg.onnx, {
      executionProviders: ['cpu'],
      intraOpNumThreads: msg.settings.intraOpThreads,
      interOpNumThreads: msg.settings.interOpThreads,
      enableCpuMemArena: msg.settings.arena,
      enableMemPattern: msg.settings.memPattern,
      executionMode: 'sequential',
      graphOptimizationLevel: 'all',
      logSeverityLevel: 3,
      // onnxruntime's intra-op threads spin between parallel sections by default, burning CPU that
      // the next upload's decode and the last one's mask need on the same cores
      // (docs/benchmarks.md, "Spinning").
      extra: { session: { intra_op: { allow_spinning: msg.settings.spinning ? '1' : '0' } } },
    }).then(
      (session) => {
        const [, , height, width] = msg.io.dims as [number, number, number, number];
        loaded = { session, init: msg, builder: new TensorBuilder(width, height, msg.segment.normalization) };
        post({ type: 'ready', inputs: graphValues(session.inputMetadata), outputs: graphValues(session.outputMetadata) });
      },
      (err: unknown) => post({ type: 'failed', message: err instanceof Error ? err.message : String(err) }),
    );
    return;
  }
  const l = loaded;
  if (!l) {
    post({ type: 'error', id: msg.id, message: 'session not initialised' });
    return;
  }
  handle(l, msg).catch((err: unknown) => post({ type: 'error', id: msg.id, message: err instanceof Error ? err.message : String(err) }));
});
