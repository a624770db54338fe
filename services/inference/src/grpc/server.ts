// The gRPC server of an inference process: Segmenter, the Open Inference Protocol, health and
// reflection, with a maximum connection age so that clients re-resolve and new pods get traffic.
// Every call passes the edge guard first (@segserve/runtime grpc-edge): each method has its own
// receive limit, applied at the message's length prefix — Segment the upload limit (equal to
// the gateway's), ModelInfer the model's input tensor and a small envelope, everything else a
// few kilobytes — and requests are scanned before they are decoded, so a message of a million
// empty entries is refused without a million objects.

import * as grpc from '@grpc/grpc-js';
import { ReflectionService } from '@grpc/reflection';
import { loadProtos, type SegserveError } from '@segserve/proto';
import { bindWithReceiveWindows, CLIENT_METADATA_KEY, clientOfForwarded, GENERIC_OIP_BOUNDS, GrpcEdgeGuard, modelInferRequestRule, SEGMENT_REQUEST_RULE, type MessageRule } from '@segserve/runtime';
import type { InferenceService, UploadReservation } from '../service.js';
import { HealthBoard } from './health.js';
import { oipHandlers, type OipInfo } from './oip.js';
import { segmenterHandlers } from './segmenter.js';
import { WARM_UP_METADATA_KEY } from './warm-up.js';

export const SEGMENTER_SERVICE = 'segserve.v1.Segmenter';
export const OIP_SERVICE = 'inference.GRPCInferenceService';
/** Health is reported for the whole server ("") and for each served service. */
export const HEALTH_SERVICES = ['', SEGMENTER_SERVICE, OIP_SERVICE] as const;

export interface GrpcServerOptions {
  readonly maxMessageBytes: number;
  readonly maxConnectionAgeMs: number;
  readonly maxConnectionAgeGraceMs: number;
  /** Hears every call the edge answers before the service sees it (metrics, logs). */
  readonly onRefusal?: (method: string, err: SegserveError) => void;
  /** The token of this process's own warm-up calls (grpc/warm-up.ts). */
  readonly warmUpToken?: string;
}

export interface GrpcEdge {
  readonly server: grpc.Server;
  readonly health: HealthBoard;
}

const NOTHING_HELD = { release: (): void => undefined };

/** Receive limit of the small methods (health, metadata, readiness, reflection), bytes. */
const SMALL_MESSAGE_BYTES = 64 * 1024;
/** A ModelInferRequest around its tensor: names, datatype, shape, parameters, id. */
export const OIP_ENVELOPE_BYTES = 64 * 1024;

/** The receive limit and wire rule of ModelInfer for the model this process serves. */
export function modelInferLimits(service: InferenceService, maxMessageBytes: number): { maxBytes: () => number; rule: () => MessageRule } {
  const elements = (): number | undefined => service.model?.input.shape.reduce((a, b) => a * b, 1);
  return {
    // Before the model is loaded the service answers UNAVAILABLE; the upload limit applies.
    maxBytes: () => {
      const n = elements();
      return n === undefined ? maxMessageBytes : Math.min(maxMessageBytes, n * 4 + OIP_ENVELOPE_BYTES);
    },
    // The model takes one FP32 tensor: its values as fp32_contents or raw bytes, nothing else.
    rule: () => {
      const n = elements();
      return modelInferRequestRule(n === undefined ? GENERIC_OIP_BOUNDS : { ...GENERIC_OIP_BOUNDS, fp32Values: n, otherValues: 0 });
    },
  };
}

export function createGrpcServer(service: InferenceService, info: OipInfo, options: GrpcServerOptions): GrpcEdge {
  const guard = new GrpcEdgeGuard({
    defaultMaxBytes: SMALL_MESSAGE_BYTES,
    // When an upload's headers arrive, before any byte of its message: a place (slots + queue,
    // counting the calls still arriving), so that the excess of a burst is refused before its
    // bytes are sent; at its length prefix, before it is buffered, its bytes. The request adopts
    // the reservation.
    arrive: (_path, caller) => (service.state === 'serving' ? service.reserveArrival(clientOfForwarded(caller.metadata.get(CLIENT_METADATA_KEY)[0], caller.peer)) : NOTHING_HELD),
    admit: (_path, bytes, _caller, place) => {
      if (place === undefined || place === NOTHING_HELD) return NOTHING_HELD;
      (place as UploadReservation).charge(bytes);
      return place;
    },
    ...(options.onRefusal ? { onRefusal: options.onRefusal } : {}),
  });
  const uploadOf = (metadata: grpc.Metadata): UploadReservation | undefined => {
    const r = guard.chargeOf(metadata);
    return r === undefined || r === NOTHING_HELD ? undefined : (r as UploadReservation);
  };
  const server = new grpc.Server({
    interceptors: [guard.interceptor],
    // A backstop: the guard applies each method's own limit at the message's length prefix.
    'grpc.max_receive_message_length': options.maxMessageBytes,
    'grpc.max_send_message_length': options.maxMessageBytes,
    'grpc.max_connection_age_ms': options.maxConnectionAgeMs,
    'grpc.max_connection_age_grace_ms': options.maxConnectionAgeGraceMs,
  });
  const protos = loadProtos();
  const health = new HealthBoard(HEALTH_SERVICES);
  const segment = { maxBytes: () => options.maxMessageBytes, rule: () => SEGMENT_REQUEST_RULE, charged: true };
  const token = options.warmUpToken;
  const isWarmUp = (metadata: grpc.Metadata): boolean => token !== undefined && metadata.get(WARM_UP_METADATA_KEY)[0] === token;
  server.addService(guard.service(protos.segmenter.segserve.v1.Segmenter.service, { Segment: segment }), segmenterHandlers(service, uploadOf, isWarmUp));
  server.addService(guard.service(protos.predictV2.inference.GRPCInferenceService.service, { ModelInfer: { ...modelInferLimits(service, options.maxMessageBytes), charged: true } }), oipHandlers(service, info, uploadOf));
  server.addService(protos.health.grpc.health.v1.Health.service, health.handlers());
  const d = protos.definitions;
  new ReflectionService({ ...d.segmenter, ...d.predictV2, ...d.health }).addToServer(server);
  return { server, health };
}

/** Binds with receive windows wide enough for bursts of image uploads (@segserve/runtime http2-windows). */
export async function bindServer(server: grpc.Server, host: string, port: number): Promise<number> {
  return (await bindWithReceiveWindows(server, `${host}:${port}`, grpc.ServerCredentials.createInsecure())).port;
}

/** Waits for open calls to finish, then forces whatever is left (e.g. reflection streams). */
export function shutdownServer(server: grpc.Server, timeoutMs: number): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      server.forceShutdown();
      resolve();
    }, timeoutMs);
    server.tryShutdown(() => {
      clearTimeout(timer);
      resolve();
    });
  });
}
