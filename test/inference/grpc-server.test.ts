// The gRPC server's remaining contracts: server reflection lists and describes every service,
// the max connection age makes clients reconnect (so new pods get traffic), and the test-only
// error fault answers INTERNAL through the error table without leaking details.

import { describe, expect, it } from 'vitest';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { createRequire } from 'node:module';
import path from 'node:path';
import { waitFor } from '../helpers/process.js';
import { MODELS, png, segment, startTestServer, syntheticImage } from './helpers.js';

const reflectionProto = path.join(path.dirname(createRequire(import.meta.url).resolve('@grpc/reflection')), '..', 'proto', 'grpc', 'reflection', 'v1', 'reflection.proto');

interface ReflectionResponse {
  list_services_response?: { service: { name: string }[] };
  file_descriptor_response?: { file_descriptor_proto: Buffer[] };
  error_response?: { error_code: number; error_message: string };
}

function reflect(target: string, request: Record<string, unknown>): Promise<ReflectionResponse> {
  const def = protoLoader.loadSync(reflectionProto, { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true });
  const pkg = grpc.loadPackageDefinition(def) as unknown as { grpc: { reflection: { v1: { ServerReflection: typeof grpc.Client } } } };
  const client = new pkg.grpc.reflection.v1.ServerReflection(target, grpc.credentials.createInsecure());
  return new Promise((resolve, reject) => {
    const stream = (client as unknown as { ServerReflectionInfo(): grpc.ClientDuplexStream<unknown, ReflectionResponse> }).ServerReflectionInfo();
    stream.once('data', (res: ReflectionResponse) => {
      stream.end();
      client.close();
      resolve(res);
    });
    stream.once('error', reject);
    stream.write(request);
  });
}

describe('gRPC server', () => {
  it('serves reflection for Segmenter, the Open Inference Protocol and health', async () => {
    await using s = await startTestServer({ model: MODELS.seg });
    const list = await reflect(s.target, { list_services: '' });
    const names = list.list_services_response!.service.map((x) => x.name);
    expect(names).toEqual(expect.arrayContaining(['segserve.v1.Segmenter', 'inference.GRPCInferenceService', 'grpc.health.v1.Health']));
    for (const [symbol, message] of [
      ['segserve.v1.Segmenter', 'SegmentRequest'],
      ['inference.GRPCInferenceService', 'ModelInferRequest'],
    ]) {
      const file = await reflect(s.target, { file_containing_symbol: symbol });
      const descriptors = file.file_descriptor_response!.file_descriptor_proto.map((b) => b.toString('latin1'));
      expect(descriptors.some((d) => d.includes(message!))).toBe(true);
    }
  });

  it('closes connections at the max connection age so that clients reconnect', async () => {
    await using s = await startTestServer({ model: MODELS.seg, env: { SEGSERVE_MAX_CONNECTION_AGE_MS: '1000' } });
    const image = await png(syntheticImage(32, 32));
    expect((await segment(s.clients, image)).value?.width).toBe(32);
    const channel = s.clients.segmenter.getChannel();
    expect(channel.getConnectivityState(false)).toBe(grpc.connectivityState.READY);
    // GOAWAY after ~1 s: the channel leaves READY (and would re-resolve on the next call).
    await waitFor(() => channel.getConnectivityState(false) !== grpc.connectivityState.READY, { timeoutMs: 30_000, what: 'the connection to be aged out' });
    expect((await segment(s.clients, image)).value?.width).toBe(32);
  });

  it('SEGSERVE_FAULT_ERROR_RATIO=1 fails every request with INTERNAL and a generic message (test only)', async () => {
    await using s = await startTestServer({ model: MODELS.seg, env: { SEGSERVE_FAULT_ERROR_RATIO: '1' } });
    const r = await segment(s.clients, await png(syntheticImage(32, 32)));
    expect(r.error?.code).toBe(grpc.status.INTERNAL);
    expect(r.code).toBe('INTERNAL');
    expect(r.error?.details).toBe('internal error');
    expect(s.logs.some((l) => l.includes('"msg":"request failed"') && l.includes('injected fault'))).toBe(true);
    expect(await s.sample('segserve_inference_requests_total', { model: 'tiny-seg', version: '1', code: 'INTERNAL' })).toBe(1);
  });
});
