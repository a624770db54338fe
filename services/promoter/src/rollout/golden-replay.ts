// Golden replay: when a canary check holds for lack of traffic, the golden-set images are sent
// through the track over gRPC Segment (the serving path), so the next window has samples.
// Failures are counted, not thrown: they show up in the track's own error metrics.
import { readFile, readdir } from 'node:fs/promises';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { DEFAULT_MAX_MESSAGE_BYTES, isValidModelName, loadProtos, type SegmenterClient } from '@segserve/proto';
import type { GoldenReplayer } from '../domain/ports.js';

export interface GoldenReplayOptions {
  /** Directory with `<model>/<golden set>/images/` (SEGSERVE_GOLDEN_ROOT). */
  readonly goldenRoot: string;
  /** The golden set replayed for a model: the policy's newest accepted one (default `golden`). */
  readonly goldenSet?: (model: string) => string;
  /** Requests in flight at once (default 2: the machine has few cores and live traffic). */
  readonly concurrency?: number;
  readonly deadlineMs?: number;
}

export class GrpcGoldenReplayer implements GoldenReplayer {
  private readonly images = new Map<string, Promise<Uint8Array[]>>();

  constructor(private readonly options: GoldenReplayOptions) {}

  private load(model: string): Promise<Uint8Array[]> {
    let p = this.images.get(model);
    if (!p) {
      p = (async () => {
        if (!isValidModelName(model)) throw new Error(`invalid model name '${model}'`);
        const dir = path.join(this.options.goldenRoot, model, this.options.goldenSet?.(model) ?? 'golden', 'images');
        const files = (await readdir(dir)).filter((f) => !f.startsWith('.')).sort();
        if (files.length === 0) throw new Error(`${dir} is empty`);
        return Promise.all(files.map(async (f) => new Uint8Array(await readFile(path.join(dir, f)))));
      })();
      p.catch(() => this.images.delete(model));
      this.images.set(model, p);
    }
    return p;
  }

  async replay(model: string, target: string, requests: number, signal: AbortSignal, options: { readonly spreadMs?: number } = {}): Promise<{ sent: number; failed: number }> {
    const images = await this.load(model);
    const { segmenter } = loadProtos();
    const client: SegmenterClient = new segmenter.segserve.v1.Segmenter(target, grpc.credentials.createInsecure(), {
      'grpc.max_send_message_length': DEFAULT_MAX_MESSAGE_BYTES,
      'grpc.max_receive_message_length': DEFAULT_MAX_MESSAGE_BYTES,
    });
    // Spread out, one at a time: a burst would queue inside the track and inflate the very
    // latency the check compares (measured: an identical copy "failed" at ×2.2 that way).
    const spread = options.spreadMs ?? 0;
    const gapMs = spread > 0 ? spread / requests : 0;
    const concurrency = spread > 0 ? 1 : (this.options.concurrency ?? 2);
    const started = Date.now();
    let next = 0;
    let sent = 0;
    let failed = 0;
    const worker = async (): Promise<void> => {
      while (next < requests && !signal.aborted) {
        const i = next++;
        const due = started + i * gapMs - Date.now();
        if (due > 0) await new Promise((r) => setTimeout(r, due));
        if (signal.aborted) break;
        const image = images[i % images.length] as Uint8Array;
        sent++;
        const ok = await new Promise<boolean>((resolve) => {
          client.Segment({ model, version: '', image, mask_format: 'PNG' }, new grpc.Metadata(), { deadline: Date.now() + (this.options.deadlineMs ?? 30_000) }, (err) => resolve(!err));
        });
        if (!ok) failed++;
      }
    };
    try {
      await Promise.all(Array.from({ length: concurrency }, worker));
    } finally {
      client.close();
    }
    return { sent, failed };
  }
}
