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

  private client(target: string): SegmenterClient {
    const { segmenter } = loadProtos();
    return new segmenter.segserve.v1.Segmenter(target, grpc.credentials.createInsecure(), {
      'grpc.max_send_message_length': DEFAULT_MAX_MESSAGE_BYTES,
      'grpc.max_receive_message_length': DEFAULT_MAX_MESSAGE_BYTES,
    });
  }

  /** One Segment call: its latency in ms, or null when it failed. */
  private segment(client: SegmenterClient, model: string, image: Uint8Array): Promise<number | null> {
    const started = performance.now();
    return new Promise((resolve) => {
      client.Segment({ model, version: '', image, mask_format: 'PNG' }, new grpc.Metadata(), { deadline: Date.now() + (this.options.deadlineMs ?? 30_000) }, (err) => resolve(err ? null : performance.now() - started));
    });
  }

  /**
   * Runs `send(i)` for i < count: spread over `spreadMs` one at a time, or (no spread) with the
   * configured concurrency. Spread out, one at a time: a burst would queue inside the track and
   * inflate the very latency the check compares (an identical copy once "failed" at ×2.2 that way).
   * `workers` senders share the schedule (pairs: two, see replayPaired).
   */
  private async paced(count: number, signal: AbortSignal, spreadMs: number, send: (i: number) => Promise<void>, workers = 1): Promise<void> {
    const gapMs = spreadMs > 0 ? spreadMs / count : 0;
    const concurrency = spreadMs > 0 ? workers : (this.options.concurrency ?? 2);
    const started = Date.now();
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < count && !signal.aborted) {
        const i = next++;
        const due = started + i * gapMs - Date.now();
        if (due > 0) await new Promise((r) => setTimeout(r, due));
        if (signal.aborted) break;
        await send(i);
      }
    };
    await Promise.all(Array.from({ length: concurrency }, worker));
  }

  async replay(model: string, target: string, requests: number, signal: AbortSignal, options: { readonly spreadMs?: number } = {}): Promise<{ sent: number; failed: number }> {
    const images = await this.load(model);
    const client = this.client(target);
    let sent = 0;
    let failed = 0;
    try {
      await this.paced(requests, signal, options.spreadMs ?? 0, async (i) => {
        sent++;
        if ((await this.segment(client, model, images[i % images.length] as Uint8Array)) === null) failed++;
      });
    } finally {
      client.close();
    }
    return { sent, failed };
  }

  async replayPaired(model: string, targets: { readonly canary: string; readonly stable: string }, pairs: number, signal: AbortSignal, options: { readonly spreadMs?: number; readonly onPair: (canaryMs: number, stableMs: number) => void }): Promise<{ sent: number; failed: number }> {
    const images = await this.load(model);
    const canary = this.client(targets.canary);
    const stable = this.client(targets.stable);
    let sent = 0;
    let failed = 0;
    try {
      // Two senders, one starting on each track (pairs i and i+1 go in opposite orders): each track
      // has about one request in flight, as with two separate replays, and gets as many per window.
      await this.paced(pairs, signal, options.spreadMs ?? 0, async (i) => {
        const image = images[i % images.length] as Uint8Array;
        // Alternate who goes first, so that neither side always meets the other's leftovers.
        const [first, second] = i % 2 === 0 ? [canary, stable] : [stable, canary];
        const a = await this.segment(first, model, image);
        const b = await this.segment(second, model, image);
        sent += 2;
        failed += (a === null ? 1 : 0) + (b === null ? 1 : 0);
        if (a !== null && b !== null) options.onPair(i % 2 === 0 ? a : b, i % 2 === 0 ? b : a);
      }, 2);
    } finally {
      canary.close();
      stable.close();
    }
    return { sent, failed };
  }
}
