// The inference service's core, shared by every edge (STYLE.md "Convert at the edge"): the
// serving state, model matching, admission, the pipeline, fault injection, metrics and the
// per-request log line. The gRPC handlers only translate wire types to these calls and errors
// to statuses.

import { setTimeout as sleep } from 'node:timers/promises';
import { SegserveError, toSegserveError, type ModelInferRequest__Output } from '@segserve/proto';
import type { AdmissionGate } from './adapters/admission-gate.js';
import type { Logger } from '@segserve/runtime';
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
  #pipeline: Pipeline | undefined;

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

  onStateChange(listener: (s: ServiceState) => void): void {
    this.#listeners.push(listener);
  }

  /** The model is loaded and warm: start serving (unless already draining). */
  serve(pipeline: Pipeline): void {
    if (this.#state === 'draining') return;
    this.#pipeline = pipeline;
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

  modelFor(name: string, version: string): LoadedModel {
    return this.#resolve(name, version).model;
  }

  segment(req: SegmentInput, ctx: CallContext): Promise<SegmentReply> {
    return this.#handle(ctx, req.model, req.version, { bytes: req.image.length }, async (pipeline, timer) => {
      // The excess of a burst is answered before the header check, which would wait for
      // libuv's threads behind the admitted requests' decodes and encodes.
      this.#gate.refuseIfFull();
      const probed = await pipeline.probe(req.image, timer);
      const permit = await timer.time('queue', () => this.#gate.acquire(ctx.signal));
      try {
        await this.#faultDelay(ctx.signal, timer);
        const result = await pipeline.segment(req.image, probed, req.maskFormat, timer, ctx.signal);
        return { ...result, model: pipeline.model.name, version: pipeline.model.version, timings: timer.ms };
      } finally {
        permit.release();
      }
    });
  }

  infer(req: ModelInferRequest__Output, ctx: CallContext): Promise<InferReply> {
    return this.#handle(ctx, req.model_name, req.model_version, {}, async (pipeline, timer) => {
      const m = pipeline.model;
      this.#gate.refuseIfFull();
      const tensor = await timer.time('preprocess', () => parseInferInput(req, m.input, m.output.name));
      const permit = await timer.time('queue', () => this.#gate.acquire(ctx.signal));
      try {
        await this.#faultDelay(ctx.signal, timer);
        const output = await pipeline.infer(tensor, timer, ctx.signal);
        ctx.signal.throwIfAborted();
        return { model: m, id: req.id, output };
      } finally {
        permit.release();
      }
    });
  }

  async #handle<T>(ctx: CallContext, name: string, version: string, fields: Record<string, unknown>, work: (p: Pipeline, t: StageTimer) => Promise<T>): Promise<T> {
    const timer = new StageTimer(this.#now);
    let code = 'OK';
    let result: T | undefined;
    try {
      const pipeline = this.#resolve(name, version);
      this.#faultError();
      result = await work(pipeline, timer);
      return result;
    } catch (err) {
      const e = toSegserveError(ctx.signal.aborted && !(err instanceof SegserveError) ? ctx.signal.reason : err);
      code = e.code;
      this.#logError(ctx, e);
      throw e;
    } finally {
      const timings = timer.finish();
      const model = this.#pipeline?.model;
      this.#metrics?.observe(model?.name ?? '', model?.version ?? '', code, timings);
      this.#logRequest(ctx, code, timings, { ...fields, ...describeResult(result) });
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

function describeResult(result: unknown): Record<string, unknown> {
  if (result !== null && typeof result === 'object' && 'width' in result && 'height' in result) {
    const r = result as SegmentReply;
    return { width: r.width, height: r.height };
  }
  return {};
}
