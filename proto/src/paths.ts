import { fileURLToPath } from 'node:url';
import path from 'node:path';

/** The repository's `proto/` directory: include root for every .proto file. */
export const PROTO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

export const PROTO_FILES = {
  segmenter: 'segserve/v1/segmenter.proto',
  predictV2: 'inference/grpc_predict_v2.proto',
  health: 'grpc/health/v1/health.proto',
} as const;

export const SCHEMA_DIR = path.join(PROTO_ROOT, 'schemas');
