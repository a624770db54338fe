// Health and readiness through warm-up, load and shutdown; SIGTERM drains (docs/reliability.md item 19);
// a model whose digest is wrong or whose file is corrupt never becomes ready while the old
// version keeps serving (20). Real `segserve inference` processes on loopback.

import { describe, expect, it } from 'vitest';
import * as grpc from '@grpc/grpc-js';
import { createHash } from 'node:crypto';
import { copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { defaultBackendFactory, parseConfig } from '@segserve/inference';
import { ERROR_CODE_METADATA_KEY, parseStartupLine } from '@segserve/proto';
import { spawnSegserve, tempDir, waitFor, type Spawned } from '../helpers/process.js';
import { MODELS, call, clients, healthStatus, parseSample, png, segment, startTestServer, syntheticImage, wrapBackend, type Clients } from './helpers.js';

const image = await png(syntheticImage(120, 80, 1));

interface Serving {
  readonly proc: Spawned;
  readonly grpcPort: number;
  readonly metricsPort: number;
  readonly clients: Clients;
}

async function spawnInference(model: string, env: Record<string, string> = {}): Promise<Spawned> {
  return spawnSegserve(['inference', '--model', model, '--grpc-port', '0', '--metrics-port', '0'], { env: { SEGSERVE_HOST: '127.0.0.1', SEGSERVE_LOG_LEVEL: 'info', ...env } });
}

async function serving(proc: Spawned): Promise<Serving> {
  const line = await proc.waitForStartup('inference', 60_000);
  return { proc, grpcPort: line.grpc_port, metricsPort: line.metrics_port, clients: clients(`127.0.0.1:${line.grpc_port}`) };
}

function watch(c: Clients, service: string): { statuses: string[]; ended: Promise<void>; stream: grpc.ClientReadableStream<{ status: string }> } {
  const statuses: string[] = [];
  const stream = (c.health as unknown as { Watch(req: { service: string }): grpc.ClientReadableStream<{ status: string }> }).Watch({ service });
  stream.on('data', (m: { status: string }) => statuses.push(m.status));
  const ended = new Promise<void>((resolve) => {
    stream.on('end', resolve);
    stream.on('error', () => resolve());
  });
  return { statuses, ended, stream };
}

describe('health through warm-up', () => {
  it('is NOT_SERVING and refuses work until the model is warm, then SERVING', async () => {
    let release!: () => void;
    const warmUpGate = new Promise<void>((r) => (release = r));
    const config = parseConfig({ SEGSERVE_MODEL_DIR: MODELS.seg }, { cpuLimit: 2, tmpDir: os.tmpdir() });
    const real = defaultBackendFactory(config);
    await using s = await startTestServer({
      model: MODELS.seg,
      waitReady: false,
      createBackend: async (artifact, arena) => {
        const b = await real(artifact, arena);
        return wrapBackend(b, { warmUp: async () => warmUpGate.then(() => b.warmUp()) });
      },
    });
    const w = watch(s.clients, '');
    for (const service of ['', 'segserve.v1.Segmenter', 'inference.GRPCInferenceService']) expect(await healthStatus(s.clients, service)).toBe('NOT_SERVING');
    const unknown = await call(s.clients.health, 'Check', { service: 'no.such.Service' });
    expect(unknown.error?.code).toBe(grpc.status.NOT_FOUND);
    const early = await segment(s.clients, image);
    expect(early.error?.code).toBe(grpc.status.UNAVAILABLE);
    expect(early.error?.metadata.get(ERROR_CODE_METADATA_KEY)).toEqual(['UNAVAILABLE']);
    expect((await call(s.clients.oip, 'ServerReady', {})).value).toEqual({ ready: false });
    expect((await call(s.clients.oip, 'ServerLive', {})).value).toEqual({ live: true });
    expect((await call(s.clients.oip, 'ModelReady', { name: 'tiny-seg', version: '' })).value).toEqual({ ready: false });
    expect((await fetch(`http://127.0.0.1:${s.proc.metricsPort}/readyz`)).status).toBe(503);
    expect((await fetch(`http://127.0.0.1:${s.proc.metricsPort}/healthz`)).status).toBe(200);
    expect(s.logs.some((l) => parseStartupLine('inference', l))).toBe(false);

    release();
    await s.proc.ready;
    await waitFor(() => w.statuses.includes('SERVING'), { what: 'Watch to report SERVING' });
    expect(w.statuses).toEqual(['NOT_SERVING', 'SERVING']);
    expect(await healthStatus(s.clients)).toBe('SERVING');
    expect((await fetch(`http://127.0.0.1:${s.proc.metricsPort}/readyz`)).status).toBe(200);
    expect((await segment(s.clients, image)).value?.width).toBe(120);
    expect(s.logs.filter((l) => parseStartupLine('inference', l))).toHaveLength(1);

    await s.stop();
    await w.ended;
    expect(w.statuses).toEqual(['NOT_SERVING', 'SERVING', 'NOT_SERVING']);
  });
});

describe('a spawned inference process', () => {
  it('logs one "serving" line with the real ports and exposes the contract metrics', async () => {
    await using proc = await spawnInference(MODELS.seg);
    const s = await serving(proc);
    try {
      expect(s.grpcPort).toBeGreaterThan(0);
      expect(s.metricsPort).toBeGreaterThan(0);
      expect((await segment(s.clients, image)).value?.width).toBe(120);
      const text = await (await fetch(`http://127.0.0.1:${s.metricsPort}/metrics`)).text();
      for (const name of [
        'segserve_inference_requests_total',
        'segserve_inference_duration_seconds_bucket',
        'segserve_inference_queue_depth',
        'segserve_inference_in_flight',
        'segserve_model_info',
        'segserve_model_load_seconds',
        'segserve_memory_limit_bytes',
        'process_resident_memory_bytes',
        'nodejs_external_memory_bytes',
      ]) {
        expect(text, name).toMatch(new RegExp(`^${name}[{ ]`, 'm'));
      }
      for (const stage of ['queue', 'decode', 'preprocess', 'infer', 'postprocess', 'encode', 'total']) {
        expect(parseSample(text, 'segserve_inference_duration_seconds_count', { model: 'tiny-seg', version: '1', stage })).toBe(1);
      }
      expect(text).toMatch(/segserve_inference_duration_seconds_bucket\{le="0\.001",model="tiny-seg",version="1",stage="total"\}/);
      expect(text).toMatch(/segserve_inference_duration_seconds_bucket\{le="10",model="tiny-seg",version="1",stage="total"\}/);
      expect(parseSample(text, 'segserve_model_info', { model: 'tiny-seg', version: '1', sha256: '2123905271aec3c90af7343054ffc87032094fd07d6a1a255b4dea4921240b51' })).toBe(1);
      expect(parseSample(text, 'segserve_memory_limit_bytes')).toBeGreaterThan(0);
      expect(proc.lines().filter((l) => parseStartupLine('inference', l))).toHaveLength(1);
    } finally {
      s.clients.close();
    }
  });

  it('SIGTERM: NOT_SERVING at once, new calls UNAVAILABLE, in-flight work finishes, exit 0 (item 19)', async () => {
    await using proc = await spawnInference(MODELS.seg, { SEGSERVE_FAULT_DELAY_MS: '3000', SEGSERVE_SHUTDOWN_GRACE_MS: '30000' });
    const s = await serving(proc);
    // A second connection, opened before the signal, stands for a client that has not yet
    // noticed the shutdown.
    const late = clients(`127.0.0.1:${s.grpcPort}`);
    try {
      expect(await healthStatus(late)).toBe('SERVING');
      const w = watch(s.clients, 'segserve.v1.Segmenter');
      await waitFor(() => w.statuses.length > 0, { what: 'first Watch status' });
      const inFlight = segment(s.clients, image);
      await waitFor(async () => parseSample(await (await fetch(`http://127.0.0.1:${s.metricsPort}/metrics`)).text(), 'segserve_inference_in_flight') === 1, { what: 'a request in flight' });
      proc.kill('SIGTERM');
      await waitFor(() => w.statuses.includes('NOT_SERVING'), { what: 'Watch to report NOT_SERVING' });
      const refused = await segment(late, image);
      expect(refused.error?.code).toBe(grpc.status.UNAVAILABLE);
      const done = await inFlight;
      expect(done.error?.details).toBeUndefined();
      expect(done.value?.width).toBe(120);
      expect(await proc.exited).toBe(0);
      expect(proc.output()).toMatch(/"msg":"shutting down".*"signal":"SIGTERM"/);
      expect(proc.output()).toMatch(/"msg":"stopped"/);
    } finally {
      late.close();
      s.clients.close();
    }
  });

  it('forces the exit after the grace time when work does not finish (item 19)', async () => {
    await using proc = await spawnInference(MODELS.seg, { SEGSERVE_FAULT_DELAY_MS: '60000', SEGSERVE_SHUTDOWN_GRACE_MS: '1000' });
    const s = await serving(proc);
    try {
      const stuck = segment(s.clients, image);
      await waitFor(async () => parseSample(await (await fetch(`http://127.0.0.1:${s.metricsPort}/metrics`)).text(), 'segserve_inference_in_flight') === 1, { what: 'a request in flight' });
      proc.kill('SIGTERM');
      expect(await proc.exited).toBe(1);
      expect(proc.output()).toMatch(/"msg":"forced exit after the grace time"/);
      expect((await stuck).error?.code).toBe(grpc.status.UNAVAILABLE);
    } finally {
      s.clients.close();
    }
  });
});

describe('a model that must not be served (item 20)', () => {
  it.each<[string, (dir: string) => Promise<void>, string]>([
    ['a wrong digest in model.json', async (dir) => copyDir(MODELS.badsha, dir), 'digest_mismatch'],
    [
      'a corrupt model.onnx whose digest matches',
      async (dir) => {
        const garbage = Buffer.from('this is not an onnx protobuf at all'.repeat(10));
        const manifest = JSON.parse(await readFile(path.join(MODELS.seg, 'model.json'), 'utf8')) as Record<string, unknown>;
        await writeFile(path.join(dir, 'model.onnx'), garbage);
        await writeFile(path.join(dir, 'model.json'), JSON.stringify({ ...manifest, sha256: createHash('sha256').update(garbage).digest('hex') }));
      },
      'runtime',
    ],
    ['a missing model.onnx', async (dir) => copyFile(path.join(MODELS.seg, 'model.json'), path.join(dir, 'model.json')), 'missing'],
  ])('%s: never ready, says why, while the old version keeps serving', async (_name, make, reason) => {
    await using tmp = await tempDir('segserve-badmodel-');
    const dir = path.join(tmp.path, 'm');
    await mkdir(dir);
    await make(dir);
    await using oldProc = await spawnInference(MODELS.seg);
    const old = await serving(oldProc);
    await using bad = await spawnInference(dir);
    try {
      const failed = await bad.waitForJson<{ reason: string; error: { message: string } }>((o) => o['msg'] === 'model load failed', 60_000);
      expect(failed.reason).toBe(reason);
      const starting = await bad.waitForJson<{ grpc_port: number }>((o) => o['msg'] === 'starting');
      const c = clients(`127.0.0.1:${starting.grpc_port}`);
      try {
        expect(await healthStatus(c)).toBe('NOT_SERVING');
        const r = await segment(c, image);
        expect(r.error?.code).toBe(grpc.status.UNAVAILABLE);
        expect((await call(c.oip, 'ServerReady', {})).value).toEqual({ ready: false });
      } finally {
        c.close();
      }
      // It keeps trying (the artifact may be fixed) and keeps refusing.
      await bad.waitForJson((o) => o['msg'] === 'model load failed' && o['attempt'] === 1, 30_000);
      expect(bad.lines().some((l) => parseStartupLine('inference', l))).toBe(false);
      expect(await healthStatus(old.clients)).toBe('SERVING');
      expect((await segment(old.clients, image)).value?.width).toBe(120);
      expect(await bad.stop()).toBe(0);
    } finally {
      old.clients.close();
    }
  });
});

async function copyDir(from: string, to: string): Promise<void> {
  for (const f of ['model.json', 'model.onnx']) await copyFile(path.join(from, f), path.join(to, f));
}

describe('memory under overload (item 13)', () => {
  it('a flood beyond the queue bound is answered OVERLOADED and RSS stays bounded', async () => {
    // One inside, one queued, and no queue timeout within the test: the two admitted requests
    // hold their places one after the other (injected latency holds the slot like a slow model,
    // without the slow model's compute, which a busy machine stretches), and the other 38 find
    // every place taken.
    await using proc = await spawnInference(MODELS.seg, { SEGSERVE_MAX_CONCURRENCY: '1', SEGSERVE_MAX_QUEUE: '1', SEGSERVE_QUEUE_TIMEOUT_MS: '600000', SEGSERVE_FAULT_DELAY_MS: '5000', NODE_OPTIONS: '--max-old-space-size=256' });
    const s = await serving(proc);
    try {
      const big = await png(syntheticImage(1152, 768, 3));
      const results = await Promise.all(Array.from({ length: 40 }, () => segment(s.clients, big)));
      const codes = results.map((r) => r.code ?? (r.error ? String(r.error.code) : 'OK'));
      expect(codes.every((c) => c === 'OK' || c === 'OVERLOADED')).toBe(true);
      expect(codes.filter((c) => c === 'OK').length).toBeGreaterThanOrEqual(2);
      expect(codes.filter((c) => c === 'OVERLOADED').length).toBeGreaterThanOrEqual(1);
      const text = await (await fetch(`http://127.0.0.1:${s.metricsPort}/metrics`)).text();
      expect(parseSample(text, 'process_resident_memory_bytes')).toBeLessThan(512 * 1024 * 1024);
      expect(proc.hasExited()).toBe(false);
    } finally {
      s.clients.close();
    }
  });
});
