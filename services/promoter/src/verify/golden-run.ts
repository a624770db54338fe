// Runs a golden set through inference processes over gRPC Segment — the serving code path —
// one request at a time, and measures what the policy judges: mIoU (dataset-level confusion
// matrix), p95 latency (the process's own `timings.total_ms`, i.e. queue → PNG encode inside
// the process, the span `segserve eval` claims; the client round trip when the server reports
// none) and peak RSS (sampled from the process's /metrics during the run). Masks are asked for
// as PNG, as clients get them, so the encode is part of the measured latency.
//
// Several processes (candidate and stable) are measured *paired*: image by image, alternating
// which goes first, never two requests at once. A busy moment on a shared machine then lands
// on both sides alike, which is what makes a 5 % latency tolerance between them meaningful.
import * as grpc from '@grpc/grpc-js';
import { DEFAULT_MAX_MESSAGE_BYTES, loadProtos, type SegmentRequest, type SegmentResponse__Output, type SegmenterClient } from '@segserve/proto';
import { decodePngMask, percentile, SegmentationScorer, type GoldenSet, type LoadedGoldenItem } from '@segserve/runtime';
import type { Metrics } from '../domain/ports.js';
import { RssSampler } from './rss-sampler.js';

export interface GoldenTarget {
  /** gRPC target of the process(es), e.g. `ipv4:127.0.0.1:50051` or `dns:///…:50051`. */
  readonly target: string;
  readonly model: string;
  /** Expected version in every response (guards against measuring the wrong process). */
  readonly version: string;
  /** `host:port` of the /metrics endpoints of the processes behind `target`. */
  readonly metricsEndpoints: readonly string[];
}

export interface GoldenRunSettings {
  readonly golden: GoldenSet;
  /** Passes over the golden set for latency (mIoU from the first pass). */
  readonly repeats: number;
  readonly requestDeadlineMs: number;
  readonly signal: AbortSignal;
}

export type GoldenRunOptions = GoldenTarget & GoldenRunSettings;

export interface GoldenMeasurement {
  /** miou, latency_ms_p95, latency_ms_p50, peak_rss_mb (when sampled), pixel_accuracy. */
  readonly metrics: Metrics;
  readonly images: number;
  readonly iou: readonly (number | null)[];
  readonly rssSamples: number;
  readonly latencySource: 'server' | 'client';
  /** Per measured request, in order (after warm-up): the process's own total, and the round trip. */
  readonly serverMs: readonly number[];
  readonly clientMs: readonly number[];
}

function segment(client: SegmenterClient, request: SegmentRequest, deadlineMs: number, signal: AbortSignal): Promise<SegmentResponse__Output> {
  return new Promise((resolve, reject) => {
    const onAbort = (): void => call.cancel();
    const call = client.Segment(request, new grpc.Metadata(), { deadline: Date.now() + deadlineMs }, (err, res) => {
      signal.removeEventListener('abort', onAbort);
      if (err || !res) reject(err ?? new Error('empty response'));
      else resolve(res);
    });
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

const WARM_UP = 3;

/** One measured process: its client, RSS sampler and what it answered. */
class Side {
  readonly client: SegmenterClient;
  readonly sampler: RssSampler;
  readonly serverMs: number[] = [];
  readonly clientMs: number[] = [];
  scorer: SegmentationScorer | undefined;

  constructor(readonly t: GoldenTarget) {
    const { segmenter } = loadProtos();
    this.client = new segmenter.segserve.v1.Segmenter(t.target, grpc.credentials.createInsecure(), {
      'grpc.max_send_message_length': DEFAULT_MAX_MESSAGE_BYTES,
      'grpc.max_receive_message_length': DEFAULT_MAX_MESSAGE_BYTES,
    });
    this.sampler = new RssSampler(t.metricsEndpoints);
  }

  async call(item: LoadedGoldenItem, s: GoldenRunSettings, score: boolean): Promise<void> {
    s.signal.throwIfAborted();
    const started = performance.now();
    const res = await segment(this.client, { model: this.t.model, version: '', image: item.image, mask_format: 'PNG' }, s.requestDeadlineMs, s.signal);
    const elapsed = performance.now() - started;
    if (res.version !== this.t.version) throw new Error(`${this.t.target} answered as version '${res.version}', expected '${this.t.version}'`);
    if (res.width !== item.mask.width || res.height !== item.mask.height) {
      throw new Error(`${item.name}: mask ${res.width}×${res.height} differs from the ground truth ${item.mask.width}×${item.mask.height}`);
    }
    this.clientMs.push(elapsed);
    this.serverMs.push(res.timings?.total_ms ?? 0);
    if (score) {
      this.scorer ??= new SegmentationScorer(Math.max(2, res.classes.length));
      this.scorer.add(decodePngMask(new Uint8Array(res.mask), `${item.name} (predicted)`), item.mask, { truth: `masks/${item.name}.png`, image: item.name });
    }
  }

  result(images: number): GoldenMeasurement {
    const useServer = this.serverMs.every((ms) => ms > 0);
    const latencies = useServer ? this.serverMs : this.clientMs;
    const scored = (this.scorer ?? new SegmentationScorer(2)).scores();
    const iou = [...scored.iou];
    const peak = this.sampler.peakMb;
    const metrics: Record<string, number> = {
      miou: scored.miou,
      latency_ms_p95: percentile(latencies, 95),
      latency_ms_p50: percentile(latencies, 50),
      pixel_accuracy: scored.pixels === 0 ? Number.NaN : scored.pixelAccuracy,
    };
    if (peak !== null) metrics['peak_rss_mb'] = peak;
    return { metrics, images, iou, rssSamples: this.sampler.samples, latencySource: useServer ? 'server' : 'client', serverMs: [...this.serverMs], clientMs: [...this.clientMs] };
  }
}

/**
 * Measures each target on the golden set, paired: per image every target once, the order
 * alternating from image to image. Returns one measurement per target, in order.
 */
export async function runGoldenSetPaired(targets: readonly GoldenTarget[], settings: GoldenRunSettings): Promise<GoldenMeasurement[]> {
  const sides = targets.map((t) => new Side(t));
  const items = settings.golden.items;
  try {
    for (const side of sides) side.sampler.start();
    // Warm-up (not measured): the first runs of a fresh process allocate onnxruntime's plans and
    // compile the JavaScript around them; they would be the slowest samples of the p95.
    for (const item of items.slice(0, WARM_UP)) for (const side of sides) await side.call(item, settings, false).catch(named(side));
    for (const side of sides) {
      side.serverMs.length = 0;
      side.clientMs.length = 0;
    }
    let turn = 0;
    for (let pass = 0; pass < settings.repeats; pass++) {
      for (const item of items) {
        const order = turn++ % 2 === 0 ? sides : [...sides].reverse();
        for (const side of order) await side.call(item, settings, pass === 0).catch(named(side));
      }
    }
  } finally {
    for (const side of sides) {
      await side.sampler.stop();
      side.client.close();
    }
  }
  return sides.map((side) => side.result(items.length));
}

/** Errors say which process failed (the candidate or the stable's sandbox). */
function named(side: Side): (err: unknown) => never {
  return (err) => {
    if (err instanceof Error && err.name === 'AbortError') throw err;
    const text = err instanceof Error ? err.message : String(err);
    throw new Error(text.includes(side.t.target) ? text : `${side.t.model} ${side.t.version} at ${side.t.target}: ${text}`, { cause: err });
  };
}

export async function runGoldenSet(options: GoldenRunOptions): Promise<GoldenMeasurement> {
  const [only] = await runGoldenSetPaired([options], options);
  return only as GoldenMeasurement;
}
