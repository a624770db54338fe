// The serving path is warmed before SERVING (services/inference/src/grpc/warm-up.ts): a real
// Segment call through the process's own gRPC port, neither counted nor logged as a request and
// given no injected fault; a call that carries another token is an ordinary request. What that
// call leaves resident belongs to the admission budget's baseline.

import { describe, expect, it } from 'vitest';
import * as grpc from '@grpc/grpc-js';
import os from 'node:os';
import { DEFAULTS, defaultBackendFactory, parseConfig } from '@segserve/inference';
import type { BackendFactory, MemoryProbe } from '@segserve/inference';
import { parseStartupLine } from '@segserve/proto';
import { headroomBytes } from '@segserve/runtime';
import { waitFor } from '../helpers/process.js';
import { healthStatus, MODELS, png, segment, startTestServer, syntheticImage, wrapBackend, type SegmentResponse } from './helpers.js';

const image = await png(syntheticImage(120, 80, 1));

/** The real backend, with every pipeline `segment` call counted and held until `open()`. */
function gatedBackend(): { createBackend: BackendFactory; segments: () => number; open: () => void } {
  const config = parseConfig({ SEGSERVE_MODEL_DIR: MODELS.seg }, { cpuLimit: 2, tmpDir: os.tmpdir() });
  const real = defaultBackendFactory(config);
  let count = 0;
  let open!: () => void;
  const opened = new Promise<void>((r) => (open = r));
  return {
    segments: () => count,
    open: () => open(),
    createBackend: async (artifact, arena) => {
      const b = await real(artifact, arena);
      return wrapBackend(b, {
        segment: async (rgb) => {
          count++;
          await opened;
          return b.segment(rgb);
        },
      });
    },
  };
}

describe('the serving path is warmed before SERVING', () => {
  it('sends the process its own call and reports SERVING only once it is answered', async () => {
    const gate = gatedBackend();
    await using s = await startTestServer({ model: MODELS.seg, waitReady: false, createBackend: gate.createBackend });
    // The model is loaded and the warm-up call is running: not SERVING yet.
    await waitFor(() => gate.segments() === 1, { timeoutMs: 60_000 });
    expect(s.proc.service.state).toBe('serving');
    for (const service of ['', 'segserve.v1.Segmenter']) expect(await healthStatus(s.clients, service)).toBe('NOT_SERVING');
    expect((await fetch(`http://127.0.0.1:${s.proc.metricsPort}/readyz`)).status).not.toBe(200);
    gate.open();
    await s.proc.ready;
    expect(s.proc.warmUp?.code).toBe('OK');
    expect(await healthStatus(s.clients, '')).toBe('SERVING');
    expect((await fetch(`http://127.0.0.1:${s.proc.metricsPort}/readyz`)).status).toBe(200);
    expect(s.logs.some((l) => l.includes('"serving path warmed"'))).toBe(true);
    // Then start-up's garbage is collected, before the start-up line and SERVING.
    const at = (msg: string): number => s.logs.findIndex((l) => l.includes(`"msg":"${msg}"`));
    expect(at('serving path warmed')).toBeLessThan(at('start-up garbage collected'));
    expect(at('start-up garbage collected')).toBeLessThan(at('serving'));
  });

  it('counts and logs the warm-up as no request, and injects no fault into it', async () => {
    await using s = await startTestServer({ model: MODELS.seg, env: { SEGSERVE_FAULT_ERROR_RATIO: '1' } });
    expect(s.proc.warmUp?.code).toBe('OK');
    expect(await s.sample('segserve_inference_requests_total', { code: 'OK' })).toBeUndefined();
    expect(s.logs.filter((l) => l.includes('"msg":"request"'))).toEqual([]);
    // Clients still get the injected fault, counted and logged.
    const r = await segment(s.clients, image);
    expect(r.code).toBe('INTERNAL');
    expect(await s.sample('segserve_inference_requests_total', { model: 'tiny-seg', version: '1', code: 'INTERNAL' })).toBe(1);
  });

  it('treats a call carrying another token as an ordinary request', async () => {
    await using s = await startTestServer({ model: MODELS.seg });
    const metadata = new grpc.Metadata();
    metadata.set('segserve-warm-up', 'not-the-token');
    const r = await new Promise<{ err: grpc.ServiceError | null; res?: SegmentResponse }>((resolve) => {
      (s.clients.segmenter as unknown as { Segment: (req: unknown, md: grpc.Metadata, cb: (err: grpc.ServiceError | null, res?: SegmentResponse) => void) => void }).Segment({ image, mask_format: 'PNG' }, metadata, (err, res) => resolve({ err, ...(res ? { res } : {}) }));
    });
    expect(r.err).toBeNull();
    expect(await s.sample('segserve_inference_requests_total', { model: 'tiny-seg', version: '1', code: 'OK' })).toBe(1);
    expect(s.logs.filter((l) => l.includes('"msg":"request"'))).toHaveLength(1);
  });

  it('measures the admission budget from the memory after the warm-up call, not before it', async () => {
    const gate = gatedBackend();
    gate.open();
    // Scripted readings: the serving path's call (the pipeline's first segment; the model's own
    // warm-up runs inside the backend) leaves 64 MiB more resident, and every run peaks 3 MiB above.
    const MiB = 2 ** 20;
    const rss = (): number => 1000 * MiB + 64 * MiB * Math.min(1, gate.segments());
    const memory: MemoryProbe = { resetPeak: () => true, read: () => ({ rssBytes: rss(), peakBytes: rss() + 3 * MiB }) };
    await using s = await startTestServer({ model: MODELS.seg, createBackend: gate.createBackend, memory, env: { SEGSERVE_MEMORY_LIMIT_MB: '4096' } });
    expect(s.proc.warmUp?.code).toBe('OK');
    expect(gate.segments()).toBe(1);
    const line = s.logs.map((l) => parseStartupLine('inference', l)).find((l) => l !== undefined);
    expect(line).toMatchObject({ baseline_mb: 1064, activation_mb: 3, activation_measured: true });
    const limit = 4096 * MiB;
    expect(await s.sample('segserve_inference_memory_budget_bytes')).toBe(Math.floor(limit - 1064 * MiB - 3 * MiB - headroomBytes(limit, DEFAULTS.memoryHeadroom)));
  });
});
