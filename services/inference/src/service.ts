// The inference service's core, shared by every edge (convert at the edge: docs/architecture.md#conventions): the
// serving state, model matching, admission, the pipeline, fault injection, metrics and the
// per-request log line. The gRPC handlers only translate wire types to these calls and errors
// to statuses.

import { setTimeout as sleep } from 'node:timers/promises';
import { SegserveError, toSegserveError, type ModelInferRequest__Output } from '@segserve/proto';
import type { AdmissionGate, Permit } from './adapters/admission-gate.js';
import type { Charge, Logger, MemoryLedger } from '@segserve/runtime';
import type { InferenceMetrics } from './adapters/metrics.js';
import type { LoadedModel } from './domain/model.js';
import { parseInferInput } from './domain/oip.js';
import type { StageTimings } from './domain/stages.js';
import { StageTimer, type MaskFormat, type Pipeline, type SegmentResult } from './pipeline.js';
import type { InferenceOutput } from './ports.js';

export type ServiceState = 'loading' | 'serving' | 'draining';

export interface CallContext {
  /** Aborted when the client cancels or its deadline passes; the reason is a SegserveError. */
  readonly signal: AbortSignal;
  readonly method: string;
  readonly peer?: string;
  /**
   * Whose request it is (@segserve/runtime client-identity): its charges are the client's, and
   * its wait for a slot takes turns with other clients'.
   */
  readonly client?: string;
  /** The call's place and its upload's door charge, taken by the edge (reserveArrival). */
  readonly upload?: UploadReservation;
  /** The process's own warm-up call (grpc/warm-up.ts): not counted, not logged, no faults. */
  readonly warmUp?: boolean;
}

/**
 * A place for a call whose message is still arriving, reserved by the gRPC edge when the call's
 * headers arrive, and its compressed bytes, charged at the message's length prefix. The
 * request that carries it adopts it; a call that never reaches the service releases it.
 */
export interface UploadReservation {
  /** Charges the upload's bytes, or throws OVERLOADED (no room now) / TOO_LARGE (never). */
  charge(bytes: number): void;
  release(): void;
}

export interface SegmentInput {
  readonly model: string;
  readonly version: string;
  readonly image: Uint8Array;
  readonly maskFormat: MaskFormat;
}

export interface SegmentReply extends SegmentResult {
  readonly model: string;
  readonly version: string;
  readonly timings: StageTimings;
}

export interface InferReply {
  readonly model: LoadedModel;
  readonly id: string;
  readonly output: InferenceOutput;
}

/** Test-only faults for canary end-to-end tests (SEGSERVE_FAULT_*); zero in production. */
export interface FaultInjection {
  readonly delayMs: number;
  readonly errorRatio: number;
}

export interface InferenceServiceOptions {
  readonly gate: AdmissionGate;
  readonly logger: Logger;
  readonly metrics?: InferenceMetrics;
  readonly fault?: FaultInjection;
  readonly random?: () => number;
  readonly now?: () => number;
}

export class InferenceService {
  readonly #gate: AdmissionGate;
  readonly #logger: Logger;
  readonly #metrics: InferenceMetrics | undefined;
  readonly #fault: FaultInjection;
  readonly #random: () => number;
  readonly #now: () => number;
  readonly #listeners: ((s: ServiceState) => void)[] = [];
  #state: ServiceState = 'loading';
  #abandoned = 0;
  /** Calls whose message is still arriving, with a reservation (reserveArrival). */
  #arriving = 0;
  #pipeline: Pipeline | undefined;
  #ledger: MemoryLedger | undefined;

  constructor(options: InferenceServiceOptions) {
    this.#gate = options.gate;
    this.#logger = options.logger;
    this.#metrics = options.metrics;
    this.#fault = options.fault ?? { delayMs: 0, errorRatio: 0 };
    this.#random = options.random ?? Math.random;
    this.#now = options.now ?? (() => performance.now());
  }

  get state(): ServiceState {
    return this.#state;
  }

  get model(): LoadedModel | undefined {
    return this.#pipeline?.model;
  }

  /**
   * Work still under way whose caller has gone away: decodes and encodes in libuv's pool and
   * model runs, none of which can be interrupted — CPU spent for nobody, and memory still
   * charged (a decode's) until it ends.
   */
  get abandonedWork(): number {
    return this.#abandoned + (this.#pipeline?.abandonedRuns ?? 0);
  }

  onStateChange(listener: (s: ServiceState) => void): void {
    this.#listeners.push(listener);
  }

  /**
   * The model is loaded and warm: start serving (unless already draining), charging requests
   * to `memory` (the admission budget, known once the baseline has been measured).
   */
  serve(pipeline: Pipeline, memory: MemoryLedger): void {
    if (this.#state === 'draining') return;
    this.#pipeline = pipeline;
    this.#ledger = memory;
    this.#setState('serving');
  }

  /** Stop taking requests; resolves when every admitted request has finished. */
  drain(): Promise<void> {
    this.#setState('draining');
    return this.#gate.idle();
  }

  #setState(state: ServiceState): void {
    if (this.#state === state) return;
    this.#state = state;
    for (const l of this.#listeners) l(state);
  }

  /** The model a request names, or the error that answers it. */
  #resolve(name: string, version: string): Pipeline {
    if (this.#state === 'draining') throw new SegserveError('UNAVAILABLE', 'shutting down');
    const p = this.#pipeline;
    if (!p) throw new SegserveError('UNAVAILABLE', 'model not loaded yet');
    const m = p.model;
    if (name !== '' && name !== m.name) throw new SegserveError('MODEL_NOT_FOUND', `model '${name}' is not served here (this process serves ${m.name}/${m.version})`);
    if (version !== '' && version !== m.version) throw new SegserveError('MODEL_NOT_FOUND', `version '${version}' of ${m.name} is not served here (this process serves ${m.version})`);
    return p;
  }

  /** ModelReady: false while loading; NOT_FOUND for another model. */
  modelReady(name: string, version: string): boolean {
    if (this.#state !== 'serving') return false;
    this.#resolve(name, version);
    return true;
  }

  /** The memory budget of the model being served (the gRPC edge charges uploads to it at the door). */
  get memory(): MemoryLedger | undefined {
    return this.#ledger;
  }

  modelFor(name: string, version: string): LoadedModel {
    return this.#resolve(name, version).model;
  }

  segment(req: SegmentInput, ctx: CallContext): Promise<SegmentReply> {
    return this.#handle(ctx, req.model, req.version, { bytes: req.image.length }, async (pipeline, timer) => {
      // The excess of a burst is answered first; then the upload is charged, its header read
      // (synchronously: a bad or oversized upload is answered at once) and what running it will
      // hold charged before it takes a slot.
      const charge = this.#doorCharge(ctx, req.image.length);
      return this.#admitted(ctx, charge, timer, async () => {
        const inspected = pipeline.inspect(req.image);
        await timer.time('queue', () => charge.growWhenRoom(inspected.workBytes, { waitMs: this.#gate.limits.queueTimeoutMs, signal: ctx.signal }));
        return async () => {
          const result = await pipeline.segment(req.image, inspected, req.maskFormat, timer, ctx.signal);
          return { ...result, model: pipeline.model.name, version: pipeline.model.version, timings: timer.ms };
        };
      });
    });
  }

  infer(req: ModelInferRequest__Output, ctx: CallContext): Promise<InferReply> {
    return this.#handle(ctx, req.model_name, req.model_version, {}, async (pipeline, timer) => {
      const m = pipeline.model;
      // The request's tensor (its upload), then the raw output of the model's size.
      const charge = this.#doorCharge(ctx, req.raw_input_contents.reduce((a, b) => a + b.length, 0) || m.input.shape.reduce((a, b) => a * b, 4));
      let tensor: Float32Array;
      try {
        tensor = await timer.time('preprocess', () => parseInferInput(req, m.input, m.output.name));
      } catch (err) {
        charge.release();
        throw err;
      }
      return this.#admitted(ctx, charge, timer, async () => {
        const [, , h, w] = m.input.shape as [number, number, number, number];
        await timer.time('queue', () => charge.growWhenRoom(m.output.channels * h * w * 4, { waitMs: this.#gate.limits.queueTimeoutMs, signal: ctx.signal }));
        return async () => ({ model: m, id: req.id, output: await pipeline.infer(tensor, timer, ctx.signal) });
      });
    });
  }

  /**
   * Reserves a place for a call whose headers have just arrived (called synchronously by the
   * gRPC edge, before any byte of its message): OVERLOADED when the calls inside and arriving
   * already take every place. The excess of a burst is refused before its uploads are sent;
   * each upload's bytes are charged to its reservation at the message's length prefix.
   */
  reserveArrival(client?: string): UploadReservation {
    if (this.#state !== 'serving') throw new SegserveError('UNAVAILABLE', this.#state === 'draining' ? 'shutting down' : 'model not loaded yet');
    this.#gate.refuseArrival(this.#arriving);
    const memory = this.#memory();
    this.#arriving++;
    let open = true;
    let charge: Charge | undefined;
    const reservation: Reservation = {
      charge: (bytes) => {
        if (!open || charge) throw new Error('upload reservation charged twice or after its end');
        charge = memory.tryCharge(bytes, client);
      },
      adopt: () => {
        if (!open) return undefined;
        open = false;
        this.#arriving--;
        return charge ?? memory.tryCharge(0, client);
      },
      release: () => {
        if (!open) return;
        open = false;
        this.#arriving--;
        charge?.release();
      },
    };
    return reservation;
  }

  /** A place and `bytes` at once (reserveArrival, then its charge). */
  reserveUpload(bytes: number, client?: string): UploadReservation {
    const r = this.reserveArrival(client);
    try {
      r.charge(bytes);
    } catch (err) {
      r.release();
      throw err;
    }
    return r;
  }

  /** The door charge of a request: the edge's reservation when it made one, else taken now. */
  #doorCharge(ctx: CallContext, bytes: number): Charge {
    const adopted = (ctx.upload as Reservation | undefined)?.adopt?.();
    if (adopted) return adopted;
    this.#gate.refuseIfFull();
    return this.#memory().tryCharge(bytes, ctx.client);
  }

  #memory(): MemoryLedger {
    const l = this.#ledger;
    if (!l) throw new SegserveError('UNAVAILABLE', 'model not loaded yet');
    return l;
  }

  /**
   * `prepare` (header checks, the wait for memory) runs holding the charge; then a slot is
   * taken and the work it returns runs. The caller is answered as soon as the work ends or the
   * caller goes away, whichever is first, and the slot is given back then. Work that cannot be
   * interrupted (a decode in libuv's pool, a model run) keeps its memory charge until it really
   * ends, and is counted as abandoned meanwhile, so the CPU it still burns shows.
   */
  async #admitted<T>(ctx: CallContext, charge: Charge, timer: StageTimer, prepare: () => Promise<() => Promise<T>>): Promise<T> {
    let running: Promise<T> | undefined;
    let abortedAt: number | undefined;
    let permit: Permit | undefined;
    try {
      const work = await prepare();
      permit = await timer.time('queue', () => this.#gate.acquire(ctx.signal, ctx.client));
      running = (async () => {
        if (!ctx.warmUp) await this.#faultDelay(ctx.signal, timer);
        return work();
      })();
      return await untilAborted(running, ctx.signal, () => (abortedAt = this.#now()));
    } finally {
      permit?.release();
      if (running === undefined || abortedAt === undefined) charge.release();
      else {
        this.#abandoned++;
        const since = abortedAt;
        void running
          .catch(() => undefined)
          .finally(() => {
            charge.release();
            this.#abandoned--;
            this.#logger.debug('abandoned work ended', { method: ctx.method, ms_after_abort: Math.round(this.#now() - since) });
          });
      }
    }
  }

  async #handle<T>(ctx: CallContext, name: string, version: string, fields: Record<string, unknown>, work: (p: Pipeline, t: StageTimer) => Promise<T>): Promise<T> {
    const timer = new StageTimer(this.#now);
    let code = 'OK';
    let result: T | undefined;
    try {
      const pipeline = this.#resolve(name, version);
      if (!ctx.warmUp) this.#faultError();
      result = await work(pipeline, timer);
      return result;
    } catch (err) {
      const e = toSegserveError(ctx.signal.aborted && !(err instanceof SegserveError) ? ctx.signal.reason : err);
      code = e.code;
      this.#logError(ctx, e);
      throw e;
    } finally {
      // A reservation the request did not adopt (it failed first) is given back here.
      ctx.upload?.release();
      const timings = timer.finish();
      const model = this.#pipeline?.model;
      if (!ctx.warmUp) {
        this.#metrics?.observe(model?.name ?? '', model?.version ?? '', code, timings);
        this.#logRequest(ctx, code, timings, { ...fields, ...describeResult(result) });
      }
    }
  }

  #faultError(): void {
    if (this.#fault.errorRatio > 0 && this.#random() < this.#fault.errorRatio) {
      throw new SegserveError('INTERNAL', 'internal error', { cause: new Error('injected fault (SEGSERVE_FAULT_ERROR_RATIO)') });
    }
  }

  /** Injected latency holds the slot, like a slower model would (counted as `infer`). */
  async #faultDelay(signal: AbortSignal, timer: StageTimer): Promise<void> {
    signal.throwIfAborted();
    if (this.#fault.delayMs <= 0) return;
    await timer.time('infer', async () => {
      try {
        await sleep(this.#fault.delayMs, undefined, { signal });
      } catch {
        throw signal.reason as Error;
      }
    });
  }

  #logRequest(ctx: CallContext, code: string, timings: StageTimings, fields: Record<string, unknown>): void {
    const ms = Object.fromEntries(Object.entries(timings).map(([k, v]) => [`${k}_ms`, Math.round(v * 10) / 10]));
    this.#logger.debug('request', { method: ctx.method, code, ...(ctx.peer === undefined ? {} : { peer: ctx.peer }), ...fields, ...ms });
  }

  /** Errors are always logged: INTERNAL with its cause (never sent to the client). */
  #logError(ctx: CallContext, err: SegserveError): void {
    if (err.code === 'INTERNAL') this.#logger.error('request failed', { method: ctx.method, code: err.code, error: err.cause ?? err });
    else this.#logger.warn('request rejected', { method: ctx.method, code: err.code, message: err.message });
  }
}

interface Reservation extends UploadReservation {
  /** Hands the charge to the request (once); undefined when already released or adopted. */
  adopt(): Charge | undefined;
}

/** `promise`, or the signal's reason as soon as it aborts (`onAbort` is told when). */
function untilAborted<T>(promise: Promise<T>, signal: AbortSignal, onAbort: () => void): Promise<T> {
  if (signal.aborted) {
    onAbort();
    return Promise.reject(signal.reason as Error);
  }
  return new Promise<T>((resolve, reject) => {
    const abort = (): void => {
      onAbort();
      reject(signal.reason as Error);
    };
    signal.addEventListener('abort', abort, { once: true });
    promise.then(
      (v) => (signal.removeEventListener('abort', abort), resolve(v)),
      (e: unknown) => (signal.removeEventListener('abort', abort), reject(e)),
    );
  });
}

function describeResult(result: unknown): Record<string, unknown> {
  if (result !== null && typeof result === 'object' && 'width' in result && 'height' in result) {
    const r = result as SegmentReply;
    return { width: r.width, height: r.height };
  }
  return {};
}
