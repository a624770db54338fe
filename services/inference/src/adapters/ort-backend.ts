// onnxruntime-node behind the InferenceBackend port: a fixed pool of worker threads, one
// session each, explicit thread/arena/memory-pattern settings (docs/architecture.md#memory-and-admission-by-cost). Requests
// inside the pipeline wait here, FIFO, for a free session; the wait is reported as queue time.

import { Worker } from 'node:worker_threads';
import { SegserveError } from '@segserve/proto';
import type { SessionSettings } from '../config.js';
import { ModelLoadError, type GraphValue } from '../domain/model.js';
import type { ClassMapOutput, InferenceBackend, InferenceOutput } from '../ports.js';
import type { FromWorker, SegmentSpec, ToWorker } from './ort-protocol.js';

type Work = { readonly type: 'run'; readonly input: Float32Array } | { readonly type: 'segment'; readonly rgb: Uint8Array };

interface Job {
  readonly id: number;
  readonly work: Work;
  readonly enqueuedAt: number;
  waitedMs?: number;
  /** Its caller went away while it ran: the session is busy for nobody. */
  abandoned: boolean;
  /** Settles the caller's promise; later calls (a result after an abort) are ignored. */
  readonly settle: (msg: FromWorker | Error) => void;
}

interface Slot {
  readonly worker: Worker;
  /** Shared with the worker: the RGB bytes of the Segment request it runs. */
  readonly rgb: Uint8Array;
  /** The job the worker is busy with, even when its caller has gone away. */
  job: Job | undefined;
}

export interface OrtBackendOptions {
  readonly onnx: Uint8Array;
  /** The input fed and the output fetched on every run (from model.json). */
  readonly io: { readonly inputName: string; readonly dims: readonly number[]; readonly outputName: string };
  readonly workers: number;
  readonly settings: SessionSettings;
  /** How Segment inputs are built and outputs reduced (from model.json). */
  readonly segment: SegmentSpec;
  /** Called when a worker thread dies; the pool continues with the others. */
  readonly onWorkerExit?: (err: Error, remaining: number) => void;
}

const WORKER_URL = new URL('./ort-worker.js', import.meta.url);

interface Started {
  readonly worker: Worker;
  readonly rgb: Uint8Array;
  readonly inputs: GraphValue[];
  readonly outputs: GraphValue[];
}

const rgbBytes = (io: OrtBackendOptions['io']): number => (io.dims[2] ?? 0) * (io.dims[3] ?? 0) * 3;

function startWorker(options: OrtBackendOptions): Promise<Started> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(WORKER_URL);
    const fail = (err: Error): void => {
      void worker.terminate();
      reject(new ModelLoadError('runtime', `onnxruntime could not load the model: ${err.message}`, { cause: err }));
    };
    worker.once('error', fail);
    worker.once('message', (msg: FromWorker) => {
      worker.off('error', fail);
      if (msg.type === 'ready') resolve({ worker, rgb, inputs: [...msg.inputs], outputs: [...msg.outputs] });
      else fail(new Error(msg.type === 'failed' ? msg.message : `unexpected '${msg.type}' message`));
    });
    // Each worker gets its own exact-size copy, transferred: the main thread keeps no model
    // bytes. (Buffer#slice would be a view whose transfer detaches the caller's buffer.)
    const copy = new Uint8Array(options.onnx);
    const rgb = new Uint8Array(new SharedArrayBuffer(rgbBytes(options.io)));
    const init: ToWorker = { type: 'init', onnx: copy, settings: options.settings, io: options.io, segment: options.segment, rgb };
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

  private constructor(workers: Started[], options: OrtBackendOptions) {
    this.inputs = workers[0]!.inputs;
    this.outputs = workers[0]!.outputs;
    this.#onWorkerExit = options.onWorkerExit;
    this.#io = options.io;
    this.#slots = workers.map(({ worker, rgb }) => {
      const slot: Slot = { worker, rgb, job: undefined };
      worker.on('message', (msg: FromWorker) => this.#onMessage(slot, msg));
      worker.on('error', (err) => this.#onExit(slot, err));
      worker.on('exit', (code) => this.#onExit(slot, new Error(`inference worker exited with code ${code}`)));
      return slot;
    });
  }

  static async create(options: OrtBackendOptions): Promise<OrtWorkerPool> {
    const started = await Promise.allSettled(Array.from({ length: Math.max(1, options.workers) }, () => startWorker(options)));
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
    return this.#submit({ type: 'run', input }, signal, (msg, waitedMs) => {
      if (msg.type !== 'result') throw new Error(`unexpected '${msg.type}' answer to a run`);
      return { data: msg.data, dims: msg.dims, waitedMs };
    });
  }

  segment(rgb: Uint8Array, signal?: AbortSignal): Promise<ClassMapOutput> {
    const expected = rgbBytes(this.#io);
    if (rgb.length !== expected) return Promise.reject(new SegserveError('INTERNAL', 'internal error', { cause: new RangeError(`expected ${expected} RGB bytes, got ${rgb.length}`) }));
    return this.#submit({ type: 'segment', rgb }, signal, (msg, waitedMs) => {
      if (msg.type !== 'classes') throw new Error(`unexpected '${msg.type}' answer to a segment`);
      return { classes: msg.classes, counts: msg.counts, width: msg.width, height: msg.height, waitedMs, ms: msg.ms };
    });
  }

  /**
   * Queues work for the next free session. An abort while it waits withdraws it; an abort
   * while it runs answers the caller at once (the run itself cannot be interrupted: the
   * session stays busy until it ends, and its result is dropped).
   */
  #submit<T>(work: Work, signal: AbortSignal | undefined, read: (msg: FromWorker, waitedMs: number) => T): Promise<T> {
    if (this.#closed) return Promise.reject(new SegserveError('UNAVAILABLE', 'inference backend closed'));
    if (this.#slots.length === 0) return Promise.reject(new SegserveError('INTERNAL', 'internal error', { cause: new Error('no inference workers left') }));
    if (signal?.aborted) return Promise.reject(signal.reason as Error);
    return new Promise<T>((resolve, reject) => {
      let settled = false;
      const job: Job = {
        id: this.#nextId++,
        work,
        enqueuedAt: performance.now(),
        abandoned: false,
        settle: (msg) => {
          if (settled) return;
          settled = true;
          signal?.removeEventListener('abort', onAbort);
          if (msg instanceof Error) reject(msg);
          else if (msg.type === 'error') reject(new SegserveError('INTERNAL', 'internal error', { cause: new Error(`onnxruntime: ${msg.message}`) }));
          else {
            try {
              resolve(read(msg, job.waitedMs ?? 0));
            } catch (err) {
              reject(new SegserveError('INTERNAL', 'internal error', { cause: err }));
            }
          }
        },
      };
      const onAbort = (): void => {
        const i = this.#pending.indexOf(job);
        if (i >= 0) this.#pending.splice(i, 1);
        else job.abandoned = true;
        job.settle(signal?.reason instanceof Error ? signal.reason : new Error(String(signal?.reason)));
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#pending.push(job);
      this.#dispatch();
    });
  }

  async warmUp(): Promise<void> {
    const [, , h, w] = this.#io.dims as [number, number, number, number];
    await Promise.all(this.#slots.map(() => this.segment(new Uint8Array(w * h * 3))));
  }

  /** Runs in flight whose callers have gone away (their sessions are still busy). */
  get abandoned(): number {
    return this.#slots.filter((s) => s.job !== undefined && s.job.abandoned).length;
  }

  #dispatch(): void {
    for (const slot of this.#slots) {
      if (slot.job !== undefined) continue;
      const job = this.#pending.shift();
      if (!job) return;
      slot.job = job;
      job.waitedMs = performance.now() - job.enqueuedAt;
      const w = job.work;
      if (w.type === 'run') {
        // A tensor is ours to move.
        slot.worker.postMessage({ type: 'run', id: job.id, input: w.input } satisfies ToWorker, [w.input.buffer as ArrayBuffer]);
      } else {
        // Decoded RGB sits in a buffer sharp owns (not transferable): copied into the memory this
        // worker shares, which is free while the slot is.
        slot.rgb.set(w.rgb);
        slot.worker.postMessage({ type: 'segment', id: job.id } satisfies ToWorker);
      }
    }
  }

  #onMessage(slot: Slot, msg: FromWorker): void {
    const job = slot.job;
    if (!job || !('id' in msg) || msg.id !== job.id) return;
    slot.job = undefined;
    job.settle(msg);
    this.#dispatch();
  }

  #onExit(slot: Slot, err: Error): void {
    const i = this.#slots.indexOf(slot);
    if (i < 0) return;
    this.#slots.splice(i, 1);
    slot.job?.settle(new SegserveError('INTERNAL', 'internal error', { cause: err }));
    slot.job = undefined;
    if (this.#closed) return;
    this.#onWorkerExit?.(err, this.#slots.length);
    if (this.#slots.length === 0) {
      for (const job of this.#pending.splice(0)) job.settle(new SegserveError('INTERNAL', 'internal error', { cause: err }));
    } else {
      this.#dispatch();
    }
  }

  async close(): Promise<void> {
    this.#closed = true;
    for (const job of this.#pending.splice(0)) job.settle(new SegserveError('UNAVAILABLE', 'inference backend closed'));
    await Promise.all(this.#slots.splice(0).map((s) => s.worker.terminate()));
  }
}
