// An in-process gRPC server on 127.0.0.1:0 that speaks Segmenter, OIP and Health like an
// inference pod, for tests of the gateway's gRPC client code (a real server beats a
// mocked client). Behaviour is steered per request through the image bytes' first line.
import * as grpc from '@grpc/grpc-js';
import { deflateSync } from 'node:zlib';
import { PNG_SIGNATURE, pngChunk, pngHeader } from '@segserve/runtime';
import { ERROR_CODE_METADATA_KEY, GRPC_STATUS, isErrorCode, loadProtos, type GRPCInferenceServiceHandlers, type HealthHandlers, type SegmenterHandlers } from '@segserve/proto';

export interface FakeUpstream {
  readonly port: number;
  readonly target: string;
  /** Segment requests received (model, version, image length). */
  readonly calls: Array<{ model: string; version: string; bytes: number; format: string }>;
  setServing(serving: boolean): void;
  close(): Promise<void>;
}

export interface FakeUpstreamOptions {
  readonly version?: string;
  readonly classes?: readonly string[];
  /** Fixed latency of every Segment call, ms. */
  readonly delayMs?: number;
}

/** A valid 8-bit greyscale PNG of `w`×`h` whose pixel (x, y) is (x + y) % classes. */
export function fakeMaskPng(w: number, h: number, classes: number): Buffer {
  const raw = Buffer.alloc((w + 1) * h);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) raw[y * (w + 1) + 1 + x] = (x + y) % classes;
  return Buffer.concat([PNG_SIGNATURE, pngChunk('IHDR', pngHeader(w, h, 8, 0)), pngChunk('IDAT', deflateSync(raw)), pngChunk('IEND', new Uint8Array(0))]);
}

/**
 * Directives, as the image's leading ASCII after a JPEG signature (FF D8 FF):
 *   "fail:<CODE>"  answer with that segserve code (status + trailer)
 *   "raw-status:<n>" answer with gRPC status n and no trailer (a foreign server)
 *   "sleep:<ms>"   wait before answering
 */
function directive(image: Buffer): string {
  return image.subarray(3, 64).toString('latin1').split('\n')[0] ?? '';
}

export async function startFakeUpstream(options: FakeUpstreamOptions = {}): Promise<FakeUpstream> {
  const version = options.version ?? '1';
  const classes = options.classes ?? ['background', 'advertising'];
  const protos = loadProtos();
  const calls: FakeUpstream['calls'] = [];
  let serving = true;
  const w = 6;
  const h = 4;

  const fail = (code: string, message: string): grpc.ServerErrorResponse => {
    const metadata = new grpc.Metadata();
    if (isErrorCode(code)) metadata.set(ERROR_CODE_METADATA_KEY, code);
    return Object.assign(new Error(message), { code: isErrorCode(code) ? GRPC_STATUS[code] : grpc.status.UNKNOWN, details: message, metadata });
  };

  const segmenter: SegmenterHandlers = {
    Segment(call, callback) {
      const req = call.request;
      calls.push({ model: req.model, version: req.version, bytes: req.image.length, format: req.mask_format });
      const d = directive(req.image);
      const answer = (): void => {
        if (req.version !== '' && req.version !== version) return callback(fail('MODEL_NOT_FOUND', `no version ${req.version}`));
        if (d.startsWith('fail:')) return callback(fail(d.slice(5), `fake failure ${d.slice(5)}`));
        if (d.startsWith('raw-status:')) return callback({ code: Number(d.slice(11)), details: 'connect ECONNREFUSED 10.1.2.3:50051' });
        const counts = new Array<number>(classes.length).fill(0);
        const raw = Buffer.alloc(w * h);
        for (let y = 0; y < h; y++) {
          for (let x = 0; x < w; x++) {
            const c = (x + y) % classes.length;
            raw[y * w + x] = c;
            counts[c] = (counts[c] ?? 0) + 1;
          }
        }
        callback(null, {
          model: req.model,
          version,
          width: w,
          height: h,
          mask: req.mask_format === 'RAW' ? raw : fakeMaskPng(w, h, classes.length),
          mask_format: req.mask_format,
          classes: classes.map((name, i) => ({ name, pixels: counts[i] ?? 0, fraction: (counts[i] ?? 0) / (w * h) })),
          timings: { total_ms: 1.5, infer_ms: 1 },
        });
      };
      const sleep = d.startsWith('sleep:') ? Number(d.slice(6)) : (options.delayMs ?? 0);
      if (sleep > 0) setTimeout(answer, sleep);
      else answer();
    },
  };

  const oip: GRPCInferenceServiceHandlers = {
    ServerLive: (_c, cb) => cb(null, { live: true }),
    ServerReady: (_c, cb) => cb(null, { ready: serving }),
    ServerMetadata: (_c, cb) => cb(null, { name: 'fake', version: '0', extensions: [] }),
    ModelReady: (_c, cb) => cb(null, { ready: serving }),
    ModelMetadata: (call, cb) =>
      cb(null, {
        name: call.request.name,
        versions: [version],
        platform: 'onnxruntime',
        inputs: [{ name: 'input', datatype: 'FP32', shape: ['1', '3', '64', '96'] }],
        outputs: [{ name: 'logits', datatype: 'FP32', shape: ['1', String(classes.length), '64', '96'] }],
      }),
    ModelInfer: (call, cb) =>
      cb(null, { model_name: call.request.model_name, model_version: version, id: call.request.id, outputs: [{ name: 'logits', datatype: 'FP32', shape: ['1'] }], raw_output_contents: [Buffer.alloc(4)] }),
  };

  const health: HealthHandlers = {
    Check: (_c, cb) => cb(null, { status: serving ? 'SERVING' : 'NOT_SERVING' }),
    Watch: (call) => call.write({ status: serving ? 'SERVING' : 'NOT_SERVING' }),
  };

  const server = new grpc.Server({ 'grpc.max_receive_message_length': 64 * 1024 * 1024 });
  server.addService(protos.segmenter.segserve.v1.Segmenter.service, segmenter);
  server.addService(protos.predictV2.inference.GRPCInferenceService.service, oip);
  server.addService(protos.health.grpc.health.v1.Health.service, health);
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))));
  return {
    port,
    target: `ipv4:127.0.0.1:${port}`,
    calls,
    setServing: (s) => {
      serving = s;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.forceShutdown();
        resolve();
      }),
  };
}

/** A JPEG-signed payload carrying a directive for the fake upstream. */
export function fakeImage(directiveText = ''): Buffer {
  return Buffer.concat([Buffer.from([0xff, 0xd8, 0xff]), Buffer.from(`${directiveText}\n`, 'latin1'), Buffer.alloc(64, 0xab)]);
}
