// The gRPC edge: segserve.v1.Segmenter and the Open Inference Protocol proxied by model name,
// grpc.health.v1 and server reflection. Same core, same error table as REST.
import * as grpc from '@grpc/grpc-js';
import { ReflectionService } from '@grpc/reflection';
import {
  toGrpcServerError,
  loadProtos,
  SegserveError,
  toSegserveError,
  type GRPCInferenceServiceHandlers,
  type HealthHandlers,
  type SegmenterHandlers,
} from '@segserve/proto';
import { bindWithReceiveWindows } from '@segserve/runtime';
import type { ApiKeys } from '../../domain/api-keys.js';
import { earliestDeadline } from '../../domain/deadline.js';
import { sniffImage } from '../../domain/image-sniff.js';
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
}

type AnyCall = grpc.ServerUnaryCall<unknown, unknown>;

function callerDeadline(call: AnyCall): number | undefined {
  const d = call.getDeadline();
  const ms = d instanceof Date ? d.getTime() : Number(d);
  return Number.isFinite(ms) ? ms : undefined;
}

/** Deadline and cancellation of an incoming call, for the upstream call it causes. */
function contextOf(call: AnyCall, deadlineMs: number): CallContext {
  const abort = new AbortController();
  call.once('cancelled', () => abort.abort());
  return { deadline: earliestDeadline(Date.now(), deadlineMs, callerDeadline(call)), signal: abort.signal };
}

export function buildGrpcServer(options: GrpcServerOptions): grpc.Server {
  const { core, readiness, apiKeys } = options;
  const protos = loadProtos();

  const authorized = (call: AnyCall): boolean => {
    const value = call.metadata.get('authorization')[0];
    return apiKeys.acceptsAuthorization(typeof value === 'string' ? value : undefined);
  };

  /**
   * Runs one proxied unary call: auth, the core call, the version header, metrics and the error
   * table. `work` returns the response and the version that served it.
   */
  const serve = <Res>(protocol: Protocol, call: AnyCall, callback: grpc.sendUnaryData<Res>, model: string, work: (ctx: CallContext) => Promise<{ response: Res; version: string }>): void => {
    const started = core.now();
    const run = async (): Promise<{ response: Res; version: string }> => {
      if (readiness.shuttingDown) throw new SegserveError('UNAVAILABLE', 'the gateway is shutting down');
      if (!authorized(call)) throw new SegserveError('UNAUTHENTICATED', 'a valid API key is required (authorization: Bearer <key>)');
      return work(contextOf(call, options.deadlineMs));
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

  const segmenter: SegmenterHandlers = {
    Segment(call, callback) {
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

  const oip: GRPCInferenceServiceHandlers = {
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
    ModelInfer(call, callback) {
      serve('oip', call, callback, call.request.model_name, async (ctx) => {
        const served = await core.infer(call.request, ctx);
        return { response: served.response, version: served.version };
      });
    },
  };

  const server = new grpc.Server({
    'grpc.max_receive_message_length': options.maxMessageBytes,
    'grpc.max_send_message_length': options.maxMessageBytes,
    // Clients reconnect now and then, so a scaled-out gateway Deployment gets its share.
    'grpc.max_connection_age_ms': 5 * 60_000,
    'grpc.max_connection_age_grace_ms': 60_000,
    'grpc.keepalive_time_ms': 60_000,
    'grpc.keepalive_timeout_ms': 20_000,
  });
  server.addService(protos.segmenter.segserve.v1.Segmenter.service, segmenter);
  server.addService(protos.predictV2.inference.GRPCInferenceService.service, oip);
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
