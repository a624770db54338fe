// Helpers for the inference integration tests: an in-process inference server on loopback
// (real onnxruntime workers, real gRPC), promisified clients, a Prometheus text reader, and an
// independent reference implementation of the pipeline built on a direct `session.run`.

import * as grpc from '@grpc/grpc-js';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import ort from 'onnxruntime-node';
import sharp from 'sharp';
import { createLogger } from '@segserve/runtime';
import { DirectoryModelStore, parseConfig, startInference, type BackendFactory, type InferenceBackend, type InferenceProcess, type MemoryProbe } from '@segserve/inference';
import { ERROR_CODE_METADATA_KEY, loadProtos, type ModelManifest } from '@segserve/proto';
import { REPO_ROOT } from '../helpers/process.js';

export const FIXTURES = path.join(REPO_ROOT, 'test', 'fixtures');
export const MODELS = {
  seg: path.join(FIXTURES, 'models', 'tiny-seg', '1'),
  seg2: path.join(FIXTURES, 'models', 'tiny-seg', '2'),
  sigmoid: path.join(FIXTURES, 'models', 'tiny-sigmoid', '1'),
  prob: path.join(FIXTURES, 'models', 'tiny-prob', '1'),
  badsha: path.join(FIXTURES, 'models', 'tiny-badsha', '1'),
  slow: path.join(FIXTURES, 'models', 'tiny-slow', '1'),
} as const;
export const GOLDEN_TINY = path.join(FIXTURES, 'golden-tiny');

export function manifestOf(dir: string): ModelManifest {
  return JSON.parse(readFileSync(path.join(dir, 'model.json'), 'utf8')) as ModelManifest;
}

export interface CallResult<T> {
  readonly value?: T;
  readonly error?: grpc.ServiceError;
  /** The segserve code from the trailer, if the server sent one. */
  readonly code?: string;
}

type UnaryMethod<Req, Res> = (req: Req, metadata: grpc.Metadata, options: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res?: Res) => void) => grpc.ClientUnaryCall;

/** Calls a unary method and never rejects: the result carries the value or the error. */
export function call<Req, Res>(client: grpc.Client, method: string, req: Req, options: grpc.CallOptions = {}, onCall?: (c: grpc.ClientUnaryCall) => void): Promise<CallResult<Res>> {
  return new Promise((resolve) => {
    const fn = (client as unknown as Record<string, UnaryMethod<Req, Res>>)[method]!.bind(client);
    const c = fn(req, new grpc.Metadata(), options, (err, res) => {
      if (err) {
        const code = err.metadata?.get(ERROR_CODE_METADATA_KEY)[0];
        resolve({ error: err, ...(typeof code === 'string' ? { code } : {}) });
      } else resolve({ value: res as Res });
    });
    onCall?.(c);
  });
}

export interface Clients {
  readonly segmenter: grpc.Client;
  readonly oip: grpc.Client;
  readonly health: grpc.Client;
  close(): void;
}

export function clients(target: string, options: grpc.ChannelOptions = {}): Clients {
  const p = loadProtos();
  const creds = grpc.credentials.createInsecure();
  const opts = { 'grpc.max_receive_message_length': 64 * 1024 * 1024, 'grpc.max_send_message_length': 64 * 1024 * 1024, ...options };
  const segmenter = new p.segmenter.segserve.v1.Segmenter(target, creds, opts);
  const oip = new p.predictV2.inference.GRPCInferenceService(target, creds, opts);
  const health = new p.health.grpc.health.v1.Health(target, creds, opts);
  return {
    segmenter,
    oip,
    health,
    close: () => {
      segmenter.close();
      oip.close();
      health.close();
    },
  };
}

export interface SegmentResponse {
  model: string;
  version: string;
  width: number;
  height: number;
  mask: Buffer;
  mask_format: string;
  classes: { name: string; pixels: string; fraction: number }[];
  timings: Record<string, number>;
}

export function segment(c: Clients, image: Buffer, extra: { model?: string; version?: string; mask_format?: 'PNG' | 'RAW' } = {}, options: grpc.CallOptions = {}, onCall?: (c: grpc.ClientUnaryCall) => void): Promise<CallResult<SegmentResponse>> {
  return call<unknown, SegmentResponse>(c.segmenter, 'Segment', { image, model: extra.model ?? '', version: extra.version ?? '', mask_format: extra.mask_format ?? 'RAW' }, options, onCall);
}

export async function healthStatus(c: Clients, service = ''): Promise<string | undefined> {
  const r = await call<{ service: string }, { status: string }>(c.health, 'Check', { service });
  return r.value?.status;
}

export interface TestServer extends AsyncDisposable {
  readonly proc: InferenceProcess;
  readonly target: string;
  readonly clients: Clients;
  readonly logs: string[];
  metrics(): Promise<string>;
  /** Value of one sample (labels must match exactly those given, in any order). */
  sample(name: string, labels?: Record<string, string>): Promise<number | undefined>;
  stop(): Promise<void>;
}

/** `backend` with some of its calls replaced; the others (and its graph values) are its own. */
export function wrapBackend(backend: InferenceBackend, calls: Partial<Pick<InferenceBackend, 'run' | 'segment' | 'warmUp' | 'close'>>): InferenceBackend {
  return {
    inputs: backend.inputs,
    outputs: backend.outputs,
    run: (x, signal) => backend.run(x, signal),
    segment: (rgb, signal) => backend.segment(rgb, signal),
    warmUp: () => backend.warmUp(),
    close: () => backend.close(),
    ...calls,
  };
}

export async function startTestServer(options: { model: string; env?: Record<string, string>; waitReady?: boolean; createBackend?: BackendFactory; memory?: MemoryProbe }): Promise<TestServer> {
  const config = parseConfig(
    // In-process, the baseline the budget is derived from is the test runner's own RSS: the
    // limit is set well above it (tests of the budget spawn a real process instead).
    { SEGSERVE_MODEL_DIR: options.model, SEGSERVE_GRPC_PORT: '0', SEGSERVE_METRICS_PORT: '0', SEGSERVE_HOST: '127.0.0.1', SEGSERVE_LOG_LEVEL: 'debug', SEGSERVE_MEMORY_LIMIT_MB: '4096', ...options.env },
    { cpuLimit: 2, tmpDir: os.tmpdir() },
  );
  const logs: string[] = [];
  const logger = createLogger({ level: config.logLevel, service: 'inference', write: (l) => logs.push(l) });
  const proc = await startInference({
    config,
    logger,
    store: new DirectoryModelStore({ dir: config.model.kind === 'directory' ? config.model.dir : '' }),
    ...(options.createBackend ? { createBackend: options.createBackend } : {}),
    ...(options.memory ? { memory: options.memory } : {}),
  });
  if (options.waitReady !== false) await proc.ready;
  const target = `127.0.0.1:${proc.grpcPort}`;
  const c = clients(target);
  const metrics = async (): Promise<string> => (await fetch(`http://127.0.0.1:${proc.metricsPort}/metrics`)).text();
  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    c.close();
    await proc.stop();
  };
  return {
    proc,
    target,
    clients: c,
    logs,
    metrics,
    sample: async (name, labels = {}) => parseSample(await metrics(), name, labels),
    stop,
    [Symbol.asyncDispose]: stop,
  };
}

/** Finds `name{labels}` in Prometheus text format. */
export function parseSample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    if (line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (.+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const got: Record<string, string> = {};
    for (const kv of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) got[kv[1]!] = kv[2]!;
    const keys = Object.keys(labels);
    if (keys.length !== Object.keys(got).length || keys.some((k) => got[k] !== labels[k])) continue;
    return Number(m[3]);
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// Reference pipeline: written independently of the service (naive loops, float64 arithmetic,
// Math.exp for sigmoid) around a direct onnxruntime session in this thread.

export interface RawImage {
  readonly data: Uint8Array;
  readonly width: number;
  readonly height: number;
}

const sessions = new Map<string, Promise<ort.InferenceSession>>();

/** A direct session with the service's default settings for 2 CPUs (1 intra-op thread). */
export function directSession(dir: string): Promise<ort.InferenceSession> {
  let s = sessions.get(dir);
  if (!s) {
    s = ort.InferenceSession.create(path.join(dir, 'model.onnx'), { intraOpNumThreads: 1, interOpNumThreads: 1, enableCpuMemArena: false, enableMemPattern: false, executionMode: 'sequential', graphOptimizationLevel: 'all' });
    sessions.set(dir, s);
  }
  return s;
}

export async function directRun(dir: string, tensor: Float32Array): Promise<{ data: Float32Array; dims: readonly number[] }> {
  const m = manifestOf(dir);
  const s = await directSession(dir);
  const out = await s.run({ [m.input.name]: new ort.Tensor('float32', tensor, [1, 3, m.input.height, m.input.width]) });
  const t = out[m.output.name]!;
  return { data: t.data as Float32Array, dims: t.dims };
}

/** Resizes RGB pixels to the model input exactly as the service's codec does (sharp, fill, linear). */
export async function resizeLikeService(img: RawImage, width: number, height: number): Promise<Uint8Array> {
  return sharp(img.data, { raw: { width: img.width, height: img.height, channels: 3 } }).resize(width, height, { fit: 'fill', kernel: 'linear' }).raw().toBuffer();
}

export function referenceTensor(rgb: Uint8Array, m: ModelManifest): Float32Array {
  const { width: w, height: h, mean, std, scale } = m.input;
  const bgr = m.input.channel_order === 'BGR';
  const out = new Float32Array(3 * w * h);
  for (let c = 0; c < 3; c++) {
    const src = bgr ? 2 - c : c;
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) out[c * w * h + y * w + x] = (rgb[(y * w + x) * 3 + src]! * scale - mean[c]!) / std[c]!;
    }
  }
  return out;
}

export function referenceClasses(out: { data: Float32Array; dims: readonly number[] }, m: ModelManifest): Uint8Array {
  const [, channels, h, w] = out.dims as [number, number, number, number];
  const plane = h * w;
  const mask = new Uint8Array(plane);
  for (let i = 0; i < plane; i++) {
    if (channels === 1) {
      const v = out.data[i]!;
      const p = m.output.kind === 'sigmoid' ? 1 / (1 + Math.exp(-v)) : v;
      mask[i] = p > (m.output.threshold ?? 0.5) ? 1 : 0;
    } else {
      let best = 0;
      for (let c = 1; c < channels; c++) if (out.data[c * plane + i]! > out.data[best * plane + i]!) best = c;
      mask[i] = best;
    }
  }
  return mask;
}

export function referenceResize(mask: Uint8Array, sw: number, sh: number, dw: number, dh: number): Uint8Array {
  const out = new Uint8Array(dw * dh);
  for (let y = 0; y < dh; y++) {
    const sy = Math.min(sh - 1, Math.floor(((y + 0.5) * sh) / dh));
    for (let x = 0; x < dw; x++) out[y * dw + x] = mask[sy * sw + Math.min(sw - 1, Math.floor(((x + 0.5) * sw) / dw))]!;
  }
  return out;
}

/** The mask the service should return for an image whose displayed pixels are `img`. */
export async function referenceMask(dir: string, img: RawImage): Promise<Uint8Array> {
  const m = manifestOf(dir);
  const resized = await resizeLikeService(img, m.input.width, m.input.height);
  const out = await directRun(dir, referenceTensor(resized, m));
  const [, , oh, ow] = out.dims as [number, number, number, number];
  return referenceResize(referenceClasses(out, m), ow, oh, img.width, img.height);
}

// ---------------------------------------------------------------------------------------------
// Test images.

/** A deterministic RGB image: a noisy non-red background with red rectangles ("signs"). */
export function syntheticImage(width: number, height: number, seed = 1): RawImage {
  let s = seed >>> 0 || 1;
  const rnd = (): number => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
  const data = new Uint8Array(width * height * 3);
  const base = [60 + rnd() * 60, 90 + rnd() * 90, 90 + rnd() * 90];
  for (let i = 0; i < width * height; i++) for (let c = 0; c < 3; c++) data[i * 3 + c] = Math.max(0, Math.min(255, base[c]! + (rnd() - 0.5) * 40));
  for (let r = 0; r < 3; r++) {
    const rw = Math.max(1, Math.floor(width * (0.15 + rnd() * 0.3)));
    const rh = Math.max(1, Math.floor(height * (0.15 + rnd() * 0.3)));
    const x0 = Math.floor(rnd() * (width - rw + 1));
    const y0 = Math.floor(rnd() * (height - rh + 1));
    for (let y = y0; y < y0 + rh; y++) for (let x = x0; x < x0 + rw; x++) data.set([220, 20 + rnd() * 30, 20 + rnd() * 30], (y * width + x) * 3);
  }
  return { data, width, height };
}

export function png(img: RawImage): Promise<Buffer> {
  return sharp(img.data, { raw: { width: img.width, height: img.height, channels: 3 } }).png().toBuffer();
}

/** Rotates pixels 90° clockwise (what EXIF orientation 6 asks a viewer to do). */
export function rotate90cw(img: RawImage): RawImage {
  const { width: w, height: h } = img;
  const out = new Uint8Array(w * h * 3);
  // Source (x, y) lands at (h - 1 - y, x) in an image h wide and w high.
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) out.set(img.data.subarray((y * w + x) * 3, (y * w + x) * 3 + 3), (x * h + (h - 1 - y)) * 3);
  return { data: out, width: h, height: w };
}

/** A PNG whose IHDR claims `width`×`height` with a tiny (invalid) IDAT: a pixel bomb header. */
export function pngBomb(width: number, height: number): Buffer {
  const crcTable = Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  const crc = (buf: Buffer): number => {
    let c = 0xffffffff;
    for (const b of buf) c = crcTable[(c ^ b) & 0xff]! ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  };
  const chunk = (type: string, data: Buffer): Buffer => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const td = Buffer.concat([Buffer.from(type, 'ascii'), data]);
    const c = Buffer.alloc(4);
    c.writeUInt32BE(crc(td));
    return Buffer.concat([len, td, c]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([8, 2, 0, 0, 0], 8); // 8-bit RGB, no interlace
  return Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr), chunk('IDAT', Buffer.from([0x78, 0x9c, 0x03, 0x00, 0x00, 0x00, 0x00, 0x01])), chunk('IEND', Buffer.alloc(0))]);
}
