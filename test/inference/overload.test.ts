// Overload, queue timeout, deadlines and cancellation at the inference service
// (docs/reliability.md items 13–16). Slots are held either by SEGSERVE_FAULT_DELAY_MS (deterministic,
// inside the slot like a slow model) or by a really slow model (tiny-slow) when the point is
// a cancellation during onnxruntime's run. Assertions are about codes, counts and order.

import { describe, expect, it } from 'vitest';
import * as grpc from '@grpc/grpc-js';
import { waitFor } from '../helpers/process.js';
import { MODELS, png, segment, startTestServer, syntheticImage, type CallResult, type SegmentResponse, type TestServer } from './helpers.js';

const image = await png(syntheticImage(120, 80, 1));

const gauge = async (s: TestServer, name: string): Promise<number | undefined> => s.sample(name);
const okCount = async (s: TestServer, code = 'OK'): Promise<number> => (await s.sample('segserve_inference_requests_total', { model: s.proc.service.model!.name, version: '1', code })) ?? 0;
const stageCount = async (s: TestServer, stage: string): Promise<number> => (await s.sample('segserve_inference_duration_seconds_count', { model: s.proc.service.model!.name, version: '1', stage })) ?? 0;

async function idle(s: TestServer): Promise<void> {
  await waitFor(async () => (await gauge(s, 'segserve_inference_in_flight')) === 0 && (await gauge(s, 'segserve_inference_queue_depth')) === 0, { timeoutMs: 60_000, what: 'in_flight and queue_depth back to 0' });
}

describe('admission control', () => {
  it('beyond the queue bound answers OVERLOADED at once, the rest run (item 13)', async () => {
    // The admitted requests hold their places until the test cancels them (the injected delay is
    // far longer than the test), so the order below does not depend on the machine's speed.
    await using s = await startTestServer({ model: MODELS.seg, env: { SEGSERVE_MAX_CONCURRENCY: '1', SEGSERVE_MAX_QUEUE: '2', SEGSERVE_QUEUE_TIMEOUT_MS: '3600000', SEGSERVE_FAULT_DELAY_MS: '600000' } });
    const places = async (): Promise<[number | undefined, number | undefined]> => [await gauge(s, 'segserve_inference_in_flight'), await gauge(s, 'segserve_inference_queue_depth')];
    const calls: grpc.ClientUnaryCall[] = [];
    const admitted: Promise<CallResult<SegmentResponse>>[] = [];
    for (const [running, queued] of [[1, 0], [1, 1], [1, 2]] as const) {
      admitted.push(segment(s.clients, image, {}, {}, (c) => calls.push(c)));
      await waitFor(async () => (await places()).join() === `${running},${queued}`, { what: `${running} running, ${queued} queued` });
    }
    const results = await Promise.all(Array.from({ length: 7 }, () => segment(s.clients, image)));
    expect(results.map((r) => r.code)).toEqual(Array(7).fill('OVERLOADED'));
    // At once: answered while the slot and both queue places were still held.
    expect(await places()).toEqual([1, 2]);
    const rejected = results[0]!;
    expect(rejected.error?.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    expect(rejected.error?.metadata.get('retry-after')).toEqual(['1']);
    expect(await okCount(s, 'OVERLOADED')).toBe(7);
    // The rest run, in order: each queued request takes the slot when the one before it ends.
    let settled = 0;
    for (const p of admitted) void p.then(() => settled++);
    for (const [i, queued] of [1, 0].entries()) {
      calls[i]!.cancel();
      await waitFor(async () => (await places()).join() === `1,${queued}` && settled === i + 1, { what: `request ${i + 2} running, ${queued} queued` });
    }
    calls[2]!.cancel();
    expect((await Promise.all(admitted)).map((r) => r.error?.code)).toEqual(Array(3).fill(grpc.status.CANCELLED));
    await idle(s);
    expect(await okCount(s, 'OVERLOADED')).toBe(7);
  });

  it('a request that waited past the queue timeout is rejected and never runs later (item 14)', async () => {
    await using s = await startTestServer({ model: MODELS.seg, env: { SEGSERVE_MAX_CONCURRENCY: '1', SEGSERVE_MAX_QUEUE: '4', SEGSERVE_QUEUE_TIMEOUT_MS: '300', SEGSERVE_FAULT_DELAY_MS: '2500' } });
    const first = segment(s.clients, image);
    await waitFor(async () => (await gauge(s, 'segserve_inference_in_flight')) === 1, { what: 'the first request running' });
    const late = await segment(s.clients, image);
    expect(late.code).toBe('OVERLOADED');
    expect(late.error?.details).toMatch(/waited \d+ ms in the queue/);
    expect((await first).value?.width).toBe(120);
    await idle(s);
    // Only the first request ever reached the stages behind the slot.
    expect(await stageCount(s, 'preprocess')).toBe(1);
    expect(await okCount(s)).toBe(1);
  });

  it('a deadline that passes while queued frees the queue place; later requests run (item 15)', async () => {
    await using s = await startTestServer({ model: MODELS.seg, env: { SEGSERVE_MAX_CONCURRENCY: '1', SEGSERVE_MAX_QUEUE: '4', SEGSERVE_QUEUE_TIMEOUT_MS: '60000', SEGSERVE_FAULT_DELAY_MS: '3000' } });
    const first = segment(s.clients, image);
    await waitFor(async () => (await gauge(s, 'segserve_inference_in_flight')) === 1, { what: 'the first request running' });
    const hurried = await segment(s.clients, image, {}, { deadline: Date.now() + 400 });
    expect(hurried.error?.code).toBe(grpc.status.DEADLINE_EXCEEDED);
    // Withdrawn from the queue while the first still runs.
    await waitFor(async () => (await gauge(s, 'segserve_inference_queue_depth')) === 0, { what: 'queue depth 0' });
    expect(await gauge(s, 'segserve_inference_in_flight')).toBe(1);
    expect((await first).value?.width).toBe(120);
    await idle(s);
    expect(await okCount(s, 'DEADLINE')).toBe(1);
    expect(await stageCount(s, 'preprocess')).toBe(1);
    const after = await segment(s.clients, image);
    expect(after.value?.width).toBe(120);
  });

  it('a deadline that passes while running frees the slot (item 15)', async () => {
    await using s = await startTestServer({ model: MODELS.seg, env: { SEGSERVE_MAX_CONCURRENCY: '1', SEGSERVE_FAULT_DELAY_MS: '30000' } });
    const r = await segment(s.clients, image, {}, { deadline: Date.now() + 500 });
    expect(r.error?.code).toBe(grpc.status.DEADLINE_EXCEEDED);
    // The 30 s of injected work was abandoned: the slot is free long before that.
    await idle(s);
    expect(await okCount(s, 'DEADLINE')).toBe(1);
  });
});

describe('cancellation during onnxruntime work (item 16)', () => {
  it('a client that cancels mid-inference frees its slot once the run ends; queued cancels leave at once', async () => {
    await using s = await startTestServer({ model: MODELS.slow, env: { SEGSERVE_MAX_CONCURRENCY: '1', SEGSERVE_MAX_QUEUE: '4', SEGSERVE_QUEUE_TIMEOUT_MS: '120000' } });
    const calls: grpc.ClientUnaryCall[] = [];
    const running = segment(s.clients, image, {}, {}, (c) => calls.push(c));
    await waitFor(async () => (await gauge(s, 'segserve_inference_in_flight')) === 1, { what: 'a run in progress' });
    const queued = segment(s.clients, image, {}, {}, (c) => calls.push(c));
    await waitFor(async () => (await gauge(s, 'segserve_inference_queue_depth')) === 1, { what: 'one queued' });
    calls[1]!.cancel();
    calls[0]!.cancel();
    const [r0, r1]: [CallResult<SegmentResponse>, CallResult<SegmentResponse>] = await Promise.all([running, queued]);
    expect(r0.error?.code).toBe(grpc.status.CANCELLED);
    expect(r1.error?.code).toBe(grpc.status.CANCELLED);
    await idle(s);
    // Neither cancelled request produced a mask; the queued one never started.
    expect(await okCount(s)).toBe(0);
    expect(await stageCount(s, 'preprocess')).toBeLessThanOrEqual(1);
    expect(await okCount(s, 'UNAVAILABLE')).toBe(2);
    // Nothing leaked: the next request runs normally.
    const next = await segment(s.clients, image);
    expect(next.value?.width).toBe(120);
  });

  it('repeated cancels keep in-flight and queue gauges at zero', async () => {
    await using s = await startTestServer({ model: MODELS.slow, env: { SEGSERVE_MAX_CONCURRENCY: '2', SEGSERVE_MAX_QUEUE: '8' } });
    for (let round = 0; round < 3; round++) {
      const calls: grpc.ClientUnaryCall[] = [];
      const pending = Array.from({ length: 6 }, () => segment(s.clients, image, {}, {}, (c) => calls.push(c)));
      await waitFor(async () => (await gauge(s, 'segserve_inference_in_flight')) === 2, { what: 'both slots busy' });
      for (const c of calls) c.cancel();
      const results = await Promise.all(pending);
      expect(results.every((r) => r.error?.code === grpc.status.CANCELLED)).toBe(true);
      await idle(s);
    }
    const next = await segment(s.clients, image);
    expect(next.value?.width).toBe(120);
  });
});
