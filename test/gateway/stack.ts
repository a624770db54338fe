// Real inference and gateway processes for the gateway's integration tests, plus small gRPC
// and HTTP client helpers. Every process is spawned through the built CLI, on loopback, port 0.
import * as grpc from '@grpc/grpc-js';
import path from 'node:path';
import { deflateSync } from 'node:zlib';
import { ERROR_CODE_METADATA_KEY, loadProtos, type SegmentResponse__Output } from '@segserve/proto';
import { REPO_ROOT, spawnSegserve, type Spawned } from '../helpers/process.js';

export const FIXTURE_MODELS = path.join(REPO_ROOT, 'test', 'fixtures', 'models');
export const TINY_IMAGES = path.join(REPO_ROOT, 'test', 'fixtures', 'golden-tiny', 'images');
export const tinySeg = (version: '1' | '2'): string => path.join(FIXTURE_MODELS, 'tiny-seg', version);

export interface InferenceProc extends AsyncDisposable {
  readonly proc: Spawned;
  readonly grpcPort: number;
  readonly metricsPort: number;
  readonly address: string;
  readonly version: string;
}

export async function startInference(modelDir: string, env: Record<string, string> = {}): Promise<InferenceProc> {
  const proc = spawnSegserve(['inference', '--model', modelDir], {
    env: { SEGSERVE_HOST: '127.0.0.1', SEGSERVE_GRPC_PORT: '0', SEGSERVE_METRICS_PORT: '0', SEGSERVE_MAX_CONCURRENCY: '1', ...env },
    name: `inference ${path.basename(path.dirname(modelDir))}/${path.basename(modelDir)}`,
  });
  const serving = await proc.waitForStartup('inference', 120_000);
  return {
    proc,
    grpcPort: serving.grpc_port,
    metricsPort: serving.metrics_port,
    address: `127.0.0.1:${serving.grpc_port}`,
    version: String(serving.version),
    [Symbol.asyncDispose]: async () => {
      await proc.stop(10_000);
    },
  };
}

export interface GatewayProc extends AsyncDisposable {
  readonly proc: Spawned;
  readonly httpPort: number;
  readonly grpcPort: number;
  readonly base: string;
  readonly address: string;
}

export async function startGatewayProc(env: Record<string, string>): Promise<GatewayProc> {
  const proc = spawnSegserve(['gateway'], { env: { SEGSERVE_HOST: '127.0.0.1', SEGSERVE_HTTP_PORT: '0', SEGSERVE_GRPC_PORT: '0', ...env }, name: 'gateway' });
  const listening = await proc.waitForStartup('gateway', 60_000);
  return {
    proc,
    httpPort: listening.http_port,
    grpcPort: listening.grpc_port,
    base: `http://127.0.0.1:${listening.http_port}`,
    address: `127.0.0.1:${listening.grpc_port}`,
    [Symbol.asyncDispose]: async () => {
      await proc.stop(15_000);
    },
  };
}

/** `ipv4:127.0.0.1:p1,127.0.0.1:p2` for a set of inference processes. */
export const ipv4Target = (...procs: InferenceProc[]): string => `ipv4:${procs.map((p) => p.address).join(',')}`;

const protos = loadProtos();

export function segmenterClient(address: string) {
  return new protos.segmenter.segserve.v1.Segmenter(address, grpc.credentials.createInsecure(), {
    'grpc.max_send_message_length': 64 * 1024 * 1024,
    'grpc.max_receive_message_length': 64 * 1024 * 1024,
  });
}

export function oipClient(address: string) {
  return new protos.predictV2.inference.GRPCInferenceService(address, grpc.credentials.createInsecure());
}

export type GrpcOutcome<T> = { ok: true; value: T } | { ok: false; code: number; details: string; segserveCode: string | undefined };

export function grpcCall<T>(start: (md: grpc.Metadata, opts: grpc.CallOptions, cb: grpc.requestCallback<T>) => grpc.ClientUnaryCall, metadata = new grpc.Metadata(), timeoutMs = 60_000): Promise<GrpcOutcome<T>> {
  return new Promise((resolve) => {
    start(metadata, { deadline: Date.now() + timeoutMs }, (err, value) => {
      if (err) resolve({ ok: false, code: err.code, details: err.details, segserveCode: err.metadata?.get(ERROR_CODE_METADATA_KEY)[0] as string | undefined });
      else resolve({ ok: true, value: value as T });
    });
  });
}

export function segmentGrpc(client: ReturnType<typeof segmenterClient>, model: string, image: Buffer, metadata?: grpc.Metadata): Promise<GrpcOutcome<SegmentResponse__Output>> {
  return grpcCall<SegmentResponse__Output>((md, opts, cb) => client.Segment({ model, image, mask_format: 'PNG' }, md, opts, cb), metadata);
}

/** POST an image as multipart field `image` (or another field name). */
export function postImage(base: string, model: string, image: Buffer | string, init: { field?: string; query?: string; headers?: Record<string, string>; filename?: string } = {}, signal?: AbortSignal): Promise<Response> {
  const form = new FormData();
  form.append(init.field ?? 'image', new Blob([typeof image === 'string' ? image : new Uint8Array(image)]), init.filename ?? 'upload.bin');
  return fetch(`${base}/v1/models/${model}/segment${init.query ?? ''}`, { method: 'POST', body: form, headers: init.headers ?? {}, ...(signal ? { signal } : {}) });
}

export async function errorBody(res: Response): Promise<{ status: number; code: string; message: string }> {
  const body = (await res.json()) as { error: { code: string; message: string } };
  return { status: res.status, ...body.error };
}

/** A PNG with any IHDR size and a tiny IDAT: the header lies (a "pixel bomb"). */
export function pngDeclaring(width: number, height: number): Buffer {
  const chunk = (type: string, data: Buffer): Buffer => {
    const head = Buffer.alloc(8);
    head.writeUInt32BE(data.length, 0);
    head.write(type, 4, 'ascii');
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), data])) >>> 0, 0);
    return Buffer.concat([head, data, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8;
  ihdr[9] = 2;
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr), chunk('IDAT', deflateSync(Buffer.alloc(1024))), chunk('IEND', Buffer.alloc(0))]);
}

function crc32(data: Buffer): number {
  let c = ~0;
  for (const b of data) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0xedb88320 : c >>> 1;
  }
  return ~c;
}

/** Reads one Prometheus sample value (sum over matching series) from a /metrics text. */
export function metricValue(text: string, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const m = /^([a-z_:]+)(\{[^}]*\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const l = m[2] ?? '';
    if (Object.entries(labels).every(([k, v]) => l.includes(`${k}="${v}"`))) sum += Number(m[3]);
  }
  return sum;
}
