// One onnxruntime session on its own thread (see ort-protocol.ts for why). Receives the model
// bytes once, then runs one request at a time; buffers move by transfer, not copy.

import ort from 'onnxruntime-node';
import { parentPort } from 'node:worker_threads';
// The collection alone, not the package's index (its gRPC and logging modules would load into this thread).
import { GarbageMeter } from '@segserve/runtime/gc';
import { classMapCounted } from '../domain/mask.js';
import { TensorBuilder } from '../domain/tensor.js';
import type { GraphValue } from '../domain/model.js';
import type { FromWorker, InitMessage, ToWorker, WorkerTimings } from './ort-protocol.js';

const port = parentPort;
if (!port) throw new Error('ort-worker.js must run in a worker thread');

interface Loaded {
  readonly session: ort.InferenceSession;
  /** The init message without the model's bytes (onnxruntime keeps its own copy of the graph). */
  readonly init: Omit<InitMessage, 'onnx'>;
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

/** Runs one request and posts its answer; resolves to the bytes of output it leaves as garbage. */
async function handle(l: Loaded, msg: Exclude<ToWorker, InitMessage>): Promise<number> {
  const t0 = performance.now();
  if (msg.type === 'run') {
    const t = await runGraph(l, msg.input);
    const data = t.data as Float32Array;
    const ms: WorkerTimings = { preprocess: 0, infer: performance.now() - t0, postprocess: 0 };
    post({ type: 'result', id: msg.id, data, dims: t.dims, ms }, [data.buffer as ArrayBuffer]);
    // transferred: the caller's now
    return 0;
  }
  const tensor = l.builder.from(l.init.rgb);
  const t1 = performance.now();
  const t = await runGraph(l, tensor);
  const t2 = performance.now();
  const [, channels, oh, ow] = t.dims as [number, number, number, number];
  const { mask: classes, counts } = classMapCounted(t.data as Float32Array, channels, oh * ow, l.init.segment.output);
  const outputBytes = (t.data as Float32Array).byteLength;
  t.dispose();
  const ms: WorkerTimings = { preprocess: t1 - t0, infer: t2 - t1, postprocess: performance.now() - t2 };
  post({ type: 'classes', id: msg.id, classes, counts, width: ow, height: oh, ms }, [classes.buffer as ArrayBuffer, counts.buffer as ArrayBuffer]);
  return outputBytes;
}

// onnxruntime-node hands a run's output over as a copy in a new buffer (4 × classes bytes per
// model pixel), garbage once the class map is taken. This thread allocates too little JavaScript
// for V8 to collect it soon: several runs' copies would stay resident beside the next run's
// activations. They are collected once the answer is posted (and handle()'s frame is gone).
const garbage = new GarbageMeter();

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
        const { onnx: _bytes, ...init } = msg;
        loaded = { session, init, builder: new TensorBuilder(width, height, msg.segment.normalization) };
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
  handle(l, msg).then(
    (bytes) => garbage.dropped(bytes),
    (err: unknown) => post({ type: 'error', id: msg.id, message: err instanceof Error ? err.message : String(err) }),
  );
});
