// The gRPC edge: segserve.v1.Segmenter and the Open Inference Protocol proxied by model name,
// grpc.health.v1 and server reflection. Same core, same error table as REST. Every call passes
// the edge guard first (@segserve/runtime grpc-edge): the API key is checked before the message
// is read, each method has its own receive limit, an upload is charged to the gateway's memory
// budget at its length prefix, and requests are scanned before they are decoded — ModelInfer
// is never decoded here at all: its bytes go to the upstream as they came.
import * as grpc from '@grpc/grpc-js';
import { ReflectionService } from '@grpc/reflection';
import {
  toGrpcServerError,
  loadProtos,
  SegserveError,
  toSegserveError,
  type HealthHandlers,
  type SegmentRequest__Output,
  type SegmentResponse__Output,
} from '@segserve/proto';
import { bindWithReceiveWindows, clientOfPeer, GENERIC_OIP_BOUNDS, GrpcEdgeGuard, modelInferRequestRule, SEGMENT_REQUEST_RULE, type MemoryLedger } from '@segserve/runtime';
import type { ApiKeys } from '../../domain/api-keys.js';
import { earliestDeadline } from '../../domain/deadline.js';
import { sniffImage } from '../../domain/image-sniff.js';
import { uploadChargeBytes } from '../../domain/upload-charge.js';
import type { GatewayCore } from '../../app/gateway-core.js';
import type { Readiness } from '../../app/readiness.js';
import type { CallContext } from '../../app/upstream-call.js';
import type { Protocol } from '../metrics.js';
import { healthHandlers } from './health.js';

export interface GrpcServerOptions {
  readonly core: GatewayCore;
  readonly readiness: Readiness;
  readonly apiKeys: ApiKeys;
  readonly deadlineMs: number;
  readonly maxMessageBytes: number;
  readonly defaultModel: string;
  /** The gateway's own version (OIP ServerMetadata). */
  readonly version: string;
  /** The gateway's memory budget for uploads. */
  readonly ledger: MemoryLedger;
}

/** Receive limit of the small methods (health, metadata, readiness, reflection), bytes. */
const SMALL_MESSAGE_BYTES = 64 * 1024;

/** Methods anyone may call, key or not: health (Kubernetes probes), liveness, readiness, reflection. */
function isOpen(path: string): boolean {
  return (
    path.startsWith('/grpc.health.v1.Health/') ||
    path.startsWith('/grpc.reflection.') ||
    path === '/inference.GRPCInferenceService/ServerLive' ||
    path === '/inference.GRPCInferenceService/ServerReady'
  );
}

type AnyCall = grpc.ServerUnaryCall<unknown, unknown>;

function callerDeadline(call: AnyCall): number | undefined {
  const d = call.getDeadline();
  const ms = d instanceof Date ? d.getTime() : Number(d);
  return Number.isFinite(ms) ? ms : undefined;
}

/** Whose call it is (its key, else its peer): the same client as its door charge. */
function clientOfCall(apiKeys: ApiKeys, metadata: grpc.Metadata, peer: string): string {
  const value = metadata.get('authorization')[0];
  return apiKeys.clientOf(typeof value === 'string' ? value : undefined, () => clientOfPeer(peer, true));
}

/** Deadline, cancellation and client of an incoming call, for the upstream call it causes. */
function contextOf(call: AnyCall, deadlineMs: number, apiKeys: ApiKeys): CallContext {
  const abort = new AbortController();
  call.once('cancelled', () => abort.abort());
  return { deadline: earliestDeadline(Date.now(), deadlineMs, callerDeadline(call)), signal: abort.signal, client: clientOfCall(apiKeys, call.metadata, call.getPeer()) };
}

export function buildGrpcServer(options: GrpcServerOptions): grpc.Server {
  const { core, readiness, apiKeys, ledger } = options;
  const protos = loadProtos();

  const guard = new GrpcEdgeGuard({
    authorize: (path, metadata) => {
      if (isOpen(path)) return true;
      const value = metadata.get('authorization')[0];
      return apiKeys.acceptsAuthorization(typeof value === 'string' ? value : undefined);
    },
    defaultMaxBytes: SMALL_MESSAGE_BYTES,
    admit: (_path, bytes, caller) => ledger.tryCharge(uploadChargeBytes('grpc', bytes), clientOfCall(apiKeys, caller.metadata, caller.peer)),
    onRefusal: (path, err) => {
      const protocol: Protocol = path.startsWith('/inference.') ? 'oip' : 'grpc';
      core.observe(protocol, '', '', err, core.now());
      core.report(protocol, err, { method: path });
    },
  });

  /**
   * Runs one proxied unary call: the core call, the version header, metrics and the error
   * table. `work` returns the response and the version that served it.
   */
  const serve = <Res>(protocol: Protocol, call: AnyCall, callback: grpc.sendUnaryData<Res>, model: string, work: (ctx: CallContext) => Promise<{ response: Res; version: string }>): void => {
    const started = core.now();
    const run = async (): Promise<{ response: Res; version: string }> => {
      if (readiness.shuttingDown) throw new SegserveError('UNAVAILABLE', 'the gateway is shutting down');
      return work(contextOf(call, options.deadlineMs, apiKeys));
    };
    run().then(
      ({ response, version }) => {
        const md = new grpc.Metadata();
        if (version !== '') md.set('segserve-model-version', version);
        call.sendMetadata(md);
        core.observe(protocol, model, version, undefined, started);
        callback(null, response);
      },
      (err: unknown) => {
        const e = toSegserveError(err);
        core.observe(protocol, model, '', e, started);
        core.report(protocol, e, { model });
        // The same status, trailer and retry-after as the inference edge (proto's one builder).
        callback(toGrpcServerError(e));
      },
    );
  };

  const segmenter = {
    Segment(call: grpc.ServerUnaryCall<SegmentRequest__Output, SegmentResponse__Output>, callback: grpc.sendUnaryData<SegmentResponse__Output>) {
      const req = call.request;
      const model = req.model === '' ? options.defaultModel : req.model;
      serve('grpc', call, callback, model, async (ctx) => {
        if (req.image.length === 0) throw new SegserveError('INVALID_INPUT', 'image is empty');
        const sniffed = sniffImage(req.image);
        if (sniffed.kind === 'rejected') throw new SegserveError('UNSUPPORTED_MEDIA_TYPE', `${sniffed.format} is not supported; send a JPEG, PNG or WebP image`);
        const served = await core.segment({ model, version: req.version, image: req.image, maskFormat: req.mask_format === 'RAW' ? 'RAW' : 'PNG' }, ctx);
        return { response: served.response, version: served.version };
      });
    },
  };

  type Unary<Req, Res = unknown> = (call: grpc.ServerUnaryCall<Req, Res>, callback: grpc.sendUnaryData<Res>) => void;
  const oip: Record<'ServerLive' | 'ServerReady' | 'ServerMetadata' | 'ModelReady' | 'ModelMetadata', Unary<{ name: string; version: string }>> & { ModelInfer: Unary<Buffer, Buffer> } = {
    ServerLive(_call, callback) {
      callback(null, { live: true });
    },
    ServerReady(_call, callback) {
      readiness.check().then(
        (r) => callback(null, { ready: r.ready }),
        () => callback(null, { ready: false }),
      );
    },
    ServerMetadata(call, callback) {
      serve('oip', call, callback, '', () => Promise.resolve({ response: { name: 'segserve-gateway', version: options.version, extensions: [] }, version: '' }));
    },
    ModelReady(call, callback) {
      const { name, version } = call.request;
      serve('oip', call, callback, name, async (ctx) => ({ response: { ready: await core.modelReady(name, version, ctx) }, version: '' }));
    },
    ModelMetadata(call, callback) {
      const { name, version } = call.request;
      serve('oip', call, callback, name, async (ctx) => {
        const served = await core.modelMetadata(name, version, ctx);
        return { response: served.response, version: served.version };
      });
    },
    // The request arrives as bytes (scanned by the guard) and leaves as bytes; so does the answer.
    ModelInfer(call, callback) {
      const raw = call.request;
      serve('oip', call, callback, core.inferModel(raw), async (ctx) => {
        const served = await core.infer(raw, ctx);
        return { response: served.response, version: served.version };
      });
    },
  };

  const server = new grpc.Server({
    interceptors: [guard.interceptor],
    // A backstop: the guard applies each method's own limit at the message's length prefix.
    'grpc.max_receive_message_length': options.maxMessageBytes,
    'grpc.max_send_message_length': options.maxMessageBytes,
    // Clients reconnect now and then, so a scaled-out gateway Deployment gets its share.
    'grpc.max_connection_age_ms': 5 * 60_000,
    'grpc.max_connection_age_grace_ms': 60_000,
    'grpc.keepalive_time_ms': 60_000,
    'grpc.keepalive_timeout_ms': 20_000,
  });
  const uploadLimit = (): number => options.maxMessageBytes;
  server.addService(guard.service(protos.segmenter.segserve.v1.Segmenter.service, { Segment: { maxBytes: uploadLimit, rule: () => SEGMENT_REQUEST_RULE, charged: true } }), segmenter);
  server.addService(
    guard.service(protos.predictV2.inference.GRPCInferenceService.service, {
      ModelInfer: { maxBytes: uploadLimit, rule: () => modelInferRequestRule(GENERIC_OIP_BOUNDS), charged: true, raw: true },
    }),
    oip,
  );
  server.addService(protos.health.grpc.health.v1.Health.service, healthHandlers(readiness) satisfies HealthHandlers);
  const { segmenter: s, predictV2, health } = protos.definitions;
  new ReflectionService({ ...s, ...predictV2, ...health }).addToServer(server);
  return server;
}

/**
 * Binds `host:port` (0 = any free port) with receive windows wide enough for bursts of image
 * uploads (@segserve/runtime http2-windows) and resolves with the bound port.
 */
export async function bindGrpc(server: grpc.Server, host: string, port: number): Promise<number> {
  const address = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
  return (await bindWithReceiveWindows(server, address, grpc.ServerCredentials.createInsecure())).port;
}
