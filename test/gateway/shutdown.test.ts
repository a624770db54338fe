// SIGTERM to the gateway: readiness drops at once, requests in flight still finish, the process
// exits 0; exactly one "listening" line with both real ports was logged.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { freePort, waitFor } from '../helpers/process.js';
import { ipv4Target, postImage, startGatewayProc, startInference, tinySeg, TINY_IMAGES, type GatewayProc, type InferenceProc } from './stack.js';
import { parseStartupLine } from '@segserve/proto';

const image = readFileSync(path.join(TINY_IMAGES, 'facade-00.png'));
let inference: InferenceProc;
let gateway: GatewayProc;

beforeAll(async () => {
  inference = await startInference(tinySeg('1'), { SEGSERVE_FAULT_DELAY_MS: '2500' });
  gateway = await startGatewayProc({ SEGSERVE_UPSTREAMS: `tiny-seg=${ipv4Target(inference)}` });
});

afterAll(async () => {
  await gateway?.[Symbol.asyncDispose]();
  await inference?.[Symbol.asyncDispose]();
});

describe('gateway lifecycle', () => {
  it('logs exactly one listening line with the bound ports', () => {
    const listening = gateway.proc.lines().flatMap((l) => parseStartupLine('gateway', l) ?? []);
    expect(listening).toHaveLength(1);
    const o = listening[0]!;
    expect(o).toMatchObject({ service: 'gateway', level: 'info', http_port: gateway.httpPort, grpc_port: gateway.grpcPort });
    expect(o.http_port).toBeGreaterThan(0);
    expect(o.grpc_port).toBeGreaterThan(0);
  });

  it('SIGTERM: the request in flight finishes, then exit 0', async () => {
    const inFlight = postImage(gateway.base, 'tiny-seg', image);
    // Until the request has reached the slow pod (however long that takes on a busy machine).
    await waitFor(async () => /^segserve_inference_in_flight 1$/m.test(await (await fetch(`http://127.0.0.1:${inference.metricsPort}/metrics`)).text()), { what: 'the request in flight at the pod', timeoutMs: 30_000 });
    gateway.proc.kill('SIGTERM');
    await gateway.proc.waitForLine(/"msg":"shutting down"/, 10_000);
    const res = await inFlight;
    expect(res.status).toBe(200);
    expect(res.headers.get('segserve-model-version')).toBe('1');
    expect(await gateway.proc.exited).toBe(0);
    expect(gateway.proc.output()).toContain('"msg":"stopped"');
    // Drained, not forced: the keep-alive connection of the finished request did not hold it.
    expect(gateway.proc.output()).not.toContain('grace time over');
  });

  it('SIGTERM while NATS was never reachable still exits 0 at once', async () => {
    const port = await freePort();
    await using lonely = await startGatewayProc({ SEGSERVE_NATS_URL: `nats://127.0.0.1:${port}` });
    await lonely.proc.waitForLine(/rollout state unavailable; retrying/, 30_000);
    expect((await fetch(`${lonely.base}/readyz`)).status).toBe(503);
    lonely.proc.kill('SIGTERM');
    expect(await lonely.proc.exited).toBe(0);
    expect(lonely.proc.output()).not.toContain('grace time over');
  });
});
