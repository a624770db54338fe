// The gRPC server of an inference process: Segmenter, the Open Inference Protocol, health and
// reflection, with explicit message-size limits (equal to the gateway's, DESIGN.md §4) and a
// maximum connection age so that clients re-resolve and new pods get traffic.

import * as grpc from '@grpc/grpc-js';
import { ReflectionService } from '@grpc/reflection';
import { loadProtos } from '@segserve/proto';
import { bindWithReceiveWindows } from '@segserve/runtime';
import type { InferenceService } from '../service.js';
import { HealthBoard } from './health.js';
import { oipHandlers, type OipInfo } from './oip.js';
import { segmenterHandlers } from './segmenter.js';

export const SEGMENTER_SERVICE = 'segserve.v1.Segmenter';
export const OIP_SERVICE = 'inference.GRPCInferenceService';
/** Health is reported for the whole server ("") and for each served service. */
export const HEALTH_SERVICES = ['', SEGMENTER_SERVICE, OIP_SERVICE] as const;

export interface GrpcServerOptions {
  readonly maxMessageBytes: number;
  readonly maxConnectionAgeMs: number;
  readonly maxConnectionAgeGraceMs: number;
}

export interface GrpcEdge {
  readonly server: grpc.Server;
  readonly health: HealthBoard;
}

export function createGrpcServer(service: InferenceService, info: OipInfo, options: GrpcServerOptions): GrpcEdge {
  const server = new grpc.Server({
    'grpc.max_receive_message_length': options.maxMessageBytes,
    'grpc.max_send_message_length': options.maxMessageBytes,
    'grpc.max_connection_age_ms': options.maxConnectionAgeMs,
    'grpc.max_connection_age_grace_ms': options.maxConnectionAgeGraceMs,
  });
  const protos = loadProtos();
  const health = new HealthBoard(HEALTH_SERVICES);
  server.addService(protos.segmenter.segserve.v1.Segmenter.service, segmenterHandlers(service));
  server.addService(protos.predictV2.inference.GRPCInferenceService.service, oipHandlers(service, info));
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
