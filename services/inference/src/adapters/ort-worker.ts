// One onnxruntime session on its own thread (see ort-protocol.ts for why). Receives the model
// bytes once, then runs tensors one at a time; buffers move by transfer, not copy.

import ort from 'onnxruntime-node';
import { parentPort } from 'node:worker_threads';
import type { FromWorker, ToWorker } from './ort-protocol.js';
import type { GraphValue } from '../domain/model.js';

const port = parentPort;
if (!port) throw new Error('ort-worker.js must run in a worker thread');

let session: ort.InferenceSession | undefined;

const post = (msg: FromWorker, transfer: ArrayBuffer[] = []): void => port.postMessage(msg, transfer);

function graphValues(meta: readonly ort.InferenceSession.ValueMetadata[]): GraphValue[] {
  return meta.map((m) => (m.isTensor ? { name: m.name, type: m.type, shape: [...m.shape] } : { name: m.name, type: 'non-tensor', shape: [] }));
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
    }).then(
      (s) => {
        session = s;
        post({ type: 'ready', inputs: graphValues(s.inputMetadata), outputs: graphValues(s.outputMetadata) });
      },
      (err: unknown) => post({ type: 'failed', message: err instanceof Error ? err.message : String(err) }),
    );
    return;
  }
  const s = session;
  if (!s) {
    post({ type: 'error', id: msg.id, message: 'session not initialised' });
    return;
  }
  const feeds = { [msg.inputName]: new ort.Tensor('float32', msg.input, msg.dims) };
  s.run(feeds, [msg.outputName]).then(
    (out) => {
      const t = out[msg.outputName];
      if (!t || t.type !== 'float32') {
        post({ type: 'error', id: msg.id, message: `output '${msg.outputName}' missing or not float32` });
        return;
      }
      const data = t.data as Float32Array;
      post({ type: 'result', id: msg.id, data, dims: t.dims }, [data.buffer as ArrayBuffer]);
    },
    (err: unknown) => post({ type: 'error', id: msg.id, message: err instanceof Error ? err.message : String(err) }),
  );
});
