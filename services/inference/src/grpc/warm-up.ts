// The serving path, warmed before a process reports SERVING. A fresh process pays once for
// everything its first requests touch — the gRPC server's, the edge guard's and the handler's
// code compiled on first call, protobuf codecs generated on first use, libvips's decoder, the
// worker's segment path, the mask encoder — and a burst that meets it then is answered late: the
// calls beyond its capacity wait behind the first uploads' cold work before their headers are
// even read (docs/benchmarks.md, "OVERLOADED at 50 independent callers"). The model's own
// warm-up run touches none of it. So before SERVING the process sends itself one real Segment
// call through its own port, with an image larger than the model's input (the shrink-on-load
// path): one model run more at start, whatever the number of slots. It carries a per-process
// token (WARM_UP_METADATA_KEY): the service neither counts nor logs it as a request and injects
// no fault into it. A failed warm-up is logged and serving starts anyway: it only costs the
// first clients their cold path.

import * as grpc from '@grpc/grpc-js';
import { randomBytes } from 'node:crypto';
import sharp from 'sharp';
import { ERROR_CODE_METADATA_KEY, loadProtos } from '@segserve/proto';

export const WARM_UP_METADATA_KEY = 'segserve-warm-up';

/** A token only this process knows: calls that carry it are its own warm-up. */
export function warmUpToken(): string {
  return randomBytes(16).toString('hex');
}

export interface WarmUpOptions {
  /** host:port of this process's gRPC server. */
  readonly target: string;
  /** The served model's name and input size. */
  readonly model: string;
  readonly width: number;
  readonly height: number;
  readonly token: string;
  /** The decoder's pixel limit: the warm-up image stays within it. */
  readonly maxInputPixels: number;
  readonly timeoutMs: number;
}

export interface WarmUpResult {
  /** The call's answer: OK or a segserve code (or grpc:<status>). */
  readonly code: string;
  readonly ms: number;
}

/** Where this process is reached from itself: a wildcard bind address means loopback. */
export function selfTarget(host: string, port: number): string {
  if (host === '' || host === '0.0.0.0') return `127.0.0.1:${port}`;
  if (host === '::' || host === '[::]') return `[::1]:${port}`;
  return host.includes(':') && !host.startsWith('[') ? `[${host}]:${port}` : `${host}:${port}`;
}

/**
 * A plain JPEG twice the model's input per side (once when that exceeds `maxInputPixels`): small
 * to make and to send, decoded by the same code as a photo.
 */
async function warmUpImage(o: WarmUpOptions): Promise<Buffer> {
  const scale = o.width * o.height * 4 <= o.maxInputPixels ? 2 : 1;
  return sharp({ create: { width: o.width * scale, height: o.height * scale, channels: 3, background: { r: 128, g: 128, b: 128 } } })
    .jpeg()
    .toBuffer();
}

export async function warmServingPath(o: WarmUpOptions): Promise<WarmUpResult> {
  const t0 = performance.now();
  const image = await warmUpImage(o);
  const protos = loadProtos();
  const client = new protos.segmenter.segserve.v1.Segmenter(o.target, grpc.credentials.createInsecure(), {
    'grpc.max_send_message_length': image.length + (1 << 20),
    'grpc.max_receive_message_length': 64 << 20,
  });
  try {
    const code = await new Promise<string>((resolve) => {
      const metadata = new grpc.Metadata();
      metadata.set(WARM_UP_METADATA_KEY, o.token);
      client.Segment({ model: o.model, image, mask_format: 'PNG' }, metadata, { deadline: Date.now() + o.timeoutMs }, (err: grpc.ServiceError | null) => {
        if (!err) return resolve('OK');
        const c = err.metadata?.get(ERROR_CODE_METADATA_KEY)[0];
        resolve(typeof c === 'string' ? c : `grpc:${grpc.status[err.code] ?? err.code}`);
      });
    });
    return { code, ms: performance.now() - t0 };
  } finally {
    client.close();
  }
}
