// onnxruntime-node behind the InferenceBackend port: a fixed pool of worker threads, one
// session each, explicit thread/arena/memory-pattern settings (DESIGN.md §10). Admission
// control upstream keeps at most `workers` runs in flight; the pool still queues FIFO so that
// direct library use (eval) is safe too.

import { Worker } from 'node:worker_threads';
import { SegserveError } from '@segserve/proto';
import type { OrtSettings } from '../config.js';
import { ModelLoadError, type GraphValue } from '../domain/model.js';
import type { InferenceBackend, InferenceOutput } from '../ports.js';
import type { FromWorker, RunMessage, ToWorker } from './ort-protocol.js';

interface Job {
  readonly id: number;
  readonly input: Float32Array;
  readonly enqueuedAt: number;
  waitedMs?: number;
  readonly resolve: (out: InferenceOutput) => void;
  readonly reject: (err: Error) => void;
}

interface Slot {
  readonly worker: Worker;
  job: Job | undefined;
}

export interface OrtBackendOptions {
  readonly onnx: Uint8Array;
  /** The input fed and the output fetched on every run (from model.json). */
  readonly io: { readonly inputName: string; readonly dims: readonly number[]; readonly outputName: string };
  readonly workers: number;
  readonly settings: OrtSettings;
  /** Called when a worker thread dies; the pool continues with the others. */
  readonly onWorkerExit?: (err: Error, remaining: number) => void;
}

const WORKER_URL = new URL('./ort-worker.js', import.meta.url);

function startWorker(onnx: Uint8Array, settings: OrtSettings): Promise<{ worker: Worker; inputs: GraphValue[]; outputs: GraphValue[] }> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(WORKER_URL);
    const fail = (err: Error): void => {
      void worker.terminate();
      reject(new ModelLoadError('runtime', `onnxruntime could not load the model: ${err.message}`, { cause: err }));
    };
    worker.once('error', fail);
    worker.once('message', (msg: FromWorker) => {
      worker.off('error', fail);
      if (msg.type === 'ready') resolve({ worker, inputs: [...msg.inputs], outputs: [...msg.outputs] });
      else fail(new Error(msg.type === 'failed' ? msg.message : `unexpected '${msg.type}' message`));
    });
    // Each worker gets its own exact-size copy, transferred: the main thread keeps no model
    // bytes. (Buffer#slice would be a view whose transfer detaches the caller's buffer.)
    const copy = new Uint8Array(onnx);
    const init: ToWorker = { type: 'init', onnx: copy, settings };
    worker.postMessage(init, [copy.buffer]);
  });
}

export class OrtWorkerPool implements InferenceBackend {
  readonly inputs: readonly GraphValue[];
  readonly outputs: readonly GraphValue[];
  readonly #slots: Slot[];
  readonly #pending: Job[] = [];
  readonly #onWorkerExit: OrtBackendOptions['onWorkerExit'];
  #nextId = 1;
  #closed = false;
  readonly #io: OrtBackendOptions['io'];

  private constructor(workers: { worker: Worker; inputs: GraphValue[]; outputs: GraphValue[] }[], options: OrtBackendOptions) {
    this.inputs = workers[0]!.inputs;
    this.outputs = workers[0]!.outputs;
    this.#onWorkerExit = options.onWorkerExit;
    this.#io = options.io;
    this.#slots = workers.map(({ worker }) => {
      const slot: Slot = { worker, job: undefined };
      worker.on('message', (msg: FromWorker) => this.#onMessage(slot, msg));
      worker.on('error', (err) => this.#onExit(slot, err));
      worker.on('exit', (code) => this.#onExit(slot, new Error(`inference worker exited with code ${code}`)));
      return slot;
    });
  }

  static async create(options: OrtBackendOptions): Promise<OrtWorkerPool> {
    const started = await Promise.allSettled(Array.from({ length: Math.max(1, options.workers) }, () => startWorker(options.onnx, options.settings)));
    const ok = started.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
    const failed = started.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) {
      await Promise.all(ok.map((w) => w.worker.terminate()));
      throw failed.reason;
    }
    return new OrtWorkerPool(ok, options);
  }

  get size(): number {
    return this.#slots.length;
  }

  run(input: Float32Array, signal?: AbortSignal): Promise<InferenceOutput> {
    if (this.#closed) return Promise.reject(new SegserveError('UNAVAILABLE', 'inference backend closed'));
    if (this.#slots.length === 0) return Promise.reject(new SegserveError('INTERNAL', 'internal error', { cause: new Error('no inference workers left') }));
    if (signal?.aborted) return Promise.reject(signal.reason as Error);
    return new Promise((resolve, reject) => {
      const job: Job = {
        id: this.#nextId++,
        input,
        enqueuedAt: performance.now(),
        resolve: (out) => (signal?.removeEventListener('abort', withdraw), resolve(out)),
        reject: (err) => (signal?.removeEventListener('abort', withdraw), reject(err)),
      };
      // Still waiting for a session: leave the line. Already running: the run finishes.
      const withdraw = (): void => {
        const i = this.#pending.indexOf(job);
        if (i >= 0) {
          this.#pending.splice(i, 1);
          job.reject(signal?.reason as Error);
        }
      };
      signal?.addEventListener('abort', withdraw, { once: true });
      this.#pending.push(job);
      this.#dispatch();
    });
  }

  async warmUp(makeInput: () => Float32Array): Promise<void> {
    await Promise.all(this.#slots.map(() => this.run(makeInput())));
  }

  #dispatch(): void {
    const io = this.#io;
    for (const slot of this.#slots) {
      if (slot.job !== undefined) continue;
      const job = this.#pending.shift();
      if (!job) return;
      slot.job = job;
      job.waitedMs = performance.now() - job.enqueuedAt;
      const msg: RunMessage = { type: 'run', id: job.id, input: job.input, inputName: io.inputName, dims: io.dims, outputName: io.outputName };
      slot.worker.postMessage(msg, [job.input.buffer as ArrayBuffer]);
    }
  }

  #onMessage(slot: Slot, msg: FromWorker): void {
    const job = slot.job;
    if (!job || (msg.type !== 'result' && msg.type !== 'error') || msg.id !== job.id) return;
    slot.job = undefined;
    if (msg.type === 'result') job.resolve({ data: msg.data, dims: msg.dims, waitedMs: job.waitedMs ?? 0 });
    else job.reject(new SegserveError('INTERNAL', 'internal error', { cause: new Error(`onnxruntime: ${msg.message}`) }));
    this.#dispatch();
  }

  #onExit(slot: Slot, err: Error): void {
    const i = this.#slots.indexOf(slot);
    if (i < 0) return;
    this.#slots.splice(i, 1);
    slot.job?.reject(new SegserveError('INTERNAL', 'internal error', { cause: err }));
    slot.job = undefined;
    if (this.#closed) return;
    this.#onWorkerExit?.(err, this.#slots.length);
    if (this.#slots.length === 0) {
      for (const job of this.#pending.splice(0)) job.reject(new SegserveError('INTERNAL', 'internal error', { cause: err }));
    } else {
      this.#dispatch();
    }
  }

  async close(): Promise<void> {
    this.#closed = true;
    for (const job of this.#pending.splice(0)) job.reject(new SegserveError('UNAVAILABLE', 'inference backend closed'));
    await Promise.all(this.#slots.splice(0).map((s) => s.worker.terminate()));
  }
}
