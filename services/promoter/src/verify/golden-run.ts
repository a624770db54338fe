// Runs a golden set through an inference process over gRPC Segment — the serving code path —
// one image at a time, and measures what the policy judges: mIoU (dataset-level confusion
// matrix), p95 latency (the process's own `timings.total_ms`, i.e. queue → PNG encode inside
// the process, the span `segserve eval` claims; the client round trip when the server reports
// none) and peak RSS (sampled from the process's /metrics during the run). Masks are asked for
// as PNG, as clients get them, so the encode is part of the measured latency.
import * as grpc from '@grpc/grpc-js';
import { DEFAULT_MAX_MESSAGE_BYTES, loadProtos, type SegmentRequest, type SegmentResponse__Output, type SegmenterClient } from '@segserve/proto';
import type { Metrics } from '../domain/ports.js';
import type { GoldenSet } from './golden-set.js';
import { decodePngMask } from './png-mask.js';
import { RssSampler } from './rss-sampler.js';
import { ConfusionMatrix, percentile } from './segmentation-score.js';

export interface GoldenRunOptions {
  /** gRPC target of the process(es), e.g. `ipv4:127.0.0.1:50051` or `dns:///…:50051`. */
  readonly target: string;
  readonly model: string;
  /** Expected version in every response (guards against measuring the wrong process). */
  readonly version: string;
  readonly golden: GoldenSet;
  /** `host:port` of the /metrics endpoints of the processes behind `target`. */
  readonly metricsEndpoints: readonly string[];
  /** Passes over the golden set for latency (mIoU from the first pass). */
  readonly repeats: number;
  readonly requestDeadlineMs: number;
  readonly signal: AbortSignal;
  /** Called after each image: the intake extends its ack deadline from here. */
  readonly onProgress?: (done: number, total: number) => void;
}

export interface GoldenMeasurement {
  /** miou, latency_ms_p95, latency_ms_p50, peak_rss_mb (when sampled), pixel_accuracy. */
  readonly metrics: Metrics;
  readonly images: number;
  readonly iou: readonly (number | null)[];
  readonly rssSamples: number;
  readonly latencySource: 'server' | 'client';
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

export async function runGoldenSet(options: GoldenRunOptions): Promise<GoldenMeasurement> {
  const { segmenter } = loadProtos();
  const client = new segmenter.segserve.v1.Segmenter(options.target, grpc.credentials.createInsecure(), {
    'grpc.max_send_message_length': DEFAULT_MAX_MESSAGE_BYTES,
    'grpc.max_receive_message_length': DEFAULT_MAX_MESSAGE_BYTES,
  });
  const sampler = new RssSampler(options.metricsEndpoints);
  const items = options.golden.items;
  const total = items.length * options.repeats + 1;
  let confusion: ConfusionMatrix | undefined;
  const serverMs: number[] = [];
  const clientMs: number[] = [];
  try {
    const call = async (index: number): Promise<SegmentResponse__Output> => {
      options.signal.throwIfAborted();
      const item = items[index] as (typeof items)[number];
      const started = performance.now();
      const res = await segment(client, { model: options.model, version: '', image: item.image, mask_format: 'PNG' }, options.requestDeadlineMs, options.signal);
      const elapsed = performance.now() - started;
      if (res.version !== options.version) throw new Error(`${options.target} answered as version '${res.version}', expected '${options.version}'`);
      if (res.width !== item.mask.width || res.height !== item.mask.height) {
        throw new Error(`${item.name}: mask ${res.width}×${res.height} differs from the ground truth ${item.mask.width}×${item.mask.height}`);
      }
      clientMs.push(elapsed);
      serverMs.push(res.timings?.total_ms ?? 0);
      return res;
    };
    sampler.start();
    // Warm-up (not measured): the first run of a fresh onnxruntime session allocates its plans.
    await call(0);
    clientMs.length = 0;
    serverMs.length = 0;
    let done = 1;
    for (let pass = 0; pass < options.repeats; pass++) {
      for (let i = 0; i < items.length; i++) {
        const res = await call(i);
        if (pass === 0) {
          confusion ??= new ConfusionMatrix(Math.max(2, res.classes.length));
          const predicted = decodePngMask(new Uint8Array(res.mask), `${(items[i] as (typeof items)[number]).name} (predicted)`);
          confusion.add(predicted.pixels, (items[i] as (typeof items)[number]).mask.pixels);
        }
        options.onProgress?.(++done, total);
      }
    }
  } finally {
    await sampler.stop();
    client.close();
  }
  const useServer = serverMs.every((ms) => ms > 0);
  const latencies = useServer ? serverMs : clientMs;
  const matrix = confusion as ConfusionMatrix;
  const iou = matrix.iou();
  const pixels = matrix.counts.reduce((a, b) => a + b, 0);
  const correct = iou.reduce<number>((acc, _v, k) => acc + (matrix.counts[k * matrix.numClasses + k] as number), 0);
  const peak = sampler.peakMb;
  const metrics: Record<string, number> = {
    miou: matrix.miou(),
    latency_ms_p95: percentile(latencies, 95),
    latency_ms_p50: percentile(latencies, 50),
    pixel_accuracy: pixels === 0 ? Number.NaN : correct / pixels,
  };
  if (peak !== null) metrics['peak_rss_mb'] = peak;
  return { metrics, images: items.length, iou, rssSamples: sampler.samples, latencySource: useServer ? 'server' : 'client' };
}
