// Loads the .proto files with one set of options, the same ones the generated types in
// src/generated/ were made with (`npm run gen -w @segserve/proto`), so types and runtime agree.
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import path from 'node:path';
import { PROTO_FILES, PROTO_ROOT } from './paths.js';
import type { ProtoGrpcType as SegmenterProto } from './generated/segmenter.js';
import type { ProtoGrpcType as PredictV2Proto } from './generated/grpc_predict_v2.js';
import type { ProtoGrpcType as HealthProto } from './generated/health.js';

export const LOADER_OPTIONS: protoLoader.Options = {
  keepCase: true,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
  includeDirs: [PROTO_ROOT],
};

export interface SegserveProtos {
  readonly segmenter: SegmenterProto;
  readonly predictV2: PredictV2Proto;
  readonly health: HealthProto;
  /** Package definitions, for server reflection. */
  readonly definitions: { readonly [K in keyof typeof PROTO_FILES]: protoLoader.PackageDefinition };
}

let cached: SegserveProtos | undefined;

/** Loads (once per process) every segserve gRPC service definition. */
export function loadProtos(): SegserveProtos {
  if (cached) return cached;
  const load = (file: string): protoLoader.PackageDefinition => protoLoader.loadSync(path.join(PROTO_ROOT, file), LOADER_OPTIONS);
  const definitions = {
    segmenter: load(PROTO_FILES.segmenter),
    predictV2: load(PROTO_FILES.predictV2),
    health: load(PROTO_FILES.health),
  };
  cached = {
    segmenter: grpc.loadPackageDefinition(definitions.segmenter) as unknown as SegmenterProto,
    predictV2: grpc.loadPackageDefinition(definitions.predictV2) as unknown as PredictV2Proto,
    health: grpc.loadPackageDefinition(definitions.health) as unknown as HealthProto,
    definitions,
  };
  return cached;
}

/** 32 MiB: the same limit for gRPC messages and REST uploads (docs/architecture.md#grpc). */
export const DEFAULT_MAX_MESSAGE_BYTES = 32 * 1024 * 1024;
