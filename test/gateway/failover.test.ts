// docs/reliability.md item 17: one of two inference processes SIGKILLed under load. Requests that start
// after the kill must all succeed (round_robin drops the dead address, the retry policy covers
// UNAVAILABLE); the ones in flight at the kill are counted and reported.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { ipv4Target, metricValue, postImage, startGatewayProc, startInference, tinySeg, TINY_IMAGES, type GatewayProc, type InferenceProc } from './stack.js';

let a: InferenceProc;
let b: InferenceProc;
let gateway: GatewayProc;
const image = readFileSync(path.join(TINY_IMAGES, 'facade-00.png'));

beforeAll(async () => {
  [a, b] = await Promise.all([startInference(tinySeg('1')), startInference(tinySeg('1'))]);
  gateway = await startGatewayProc({ SEGSERVE_UPSTREAMS: `tiny-seg=${ipv4Target(a, b)}` });
});

afterAll(async () => {
  await gateway?.[Symbol.asyncDispose]();
  await Promise.all([a?.[Symbol.asyncDispose](), b?.[Symbol.asyncDispose]()]);
});

interface Outcome {
  readonly startedAt: number;
  readonly endedAt: number;
  readonly status: number;
}

describe('failover', () => {
  it('17: SIGKILL of one of two processes under load → no failure for requests started after it', async () => {
    const outcomes: Outcome[] = [];
    let killedAt = Number.POSITIVE_INFINITY;
    let stop = false;
    const send = async (): Promise<void> => {
      const startedAt = performance.now();
      let status: number;
      try {
        const res = await postImage(gateway.base, 'tiny-seg', image);
        await res.arrayBuffer();
        status = res.status;
      } catch {
        status = 0;
      }
      outcomes.push({ startedAt, endedAt: performance.now(), status });
    };
    const workers = Array.from({ length: 6 }, async () => {
      while (!stop) await send();
    });

    // Load on both processes, then kill one while requests are in flight.
    const servedBy = async (p: InferenceProc): Promise<number> => metricValue(await (await fetch(`http://127.0.0.1:${p.metricsPort}/metrics`)).text(), 'segserve_inference_requests_total');
    while (outcomes.length < 60) await new Promise((r) => setTimeout(r, 20));
    expect(await servedBy(a)).toBeGreaterThan(0);
    expect(await servedBy(b)).toBeGreaterThan(0);
    a.proc.kill('SIGKILL');
    killedAt = performance.now();
    await a.proc.exited;

    const countAfter = (): number => outcomes.filter((o) => o.startedAt > killedAt).length;
    while (countAfter() < 150) await new Promise((r) => setTimeout(r, 20));
    stop = true;
    await Promise.all(workers);

    const after = outcomes.filter((o) => o.startedAt > killedAt);
    const inFlight = outcomes.filter((o) => o.startedAt <= killedAt && o.endedAt > killedAt);
    const failedAfter = after.filter((o) => o.status !== 200);
    const failedInFlight = inFlight.filter((o) => o.status !== 200);
    console.log(`docs/reliability.md item 17: ${after.length} requests after the kill, ${failedAfter.length} failed; ${inFlight.length} in flight at the kill, ${failedInFlight.length} failed`);
    expect(failedAfter).toEqual([]);
    // In-flight requests are retried on the other process (UNAVAILABLE before any response).
    expect(failedInFlight.length).toBeLessThanOrEqual(inFlight.length);
    const text = await (await fetch(`${gateway.base}/metrics`)).text();
    console.log(`gateway upstream retries: ${metricValue(text, 'segserve_gateway_upstream_retries_total')}`);
    expect(await servedBy(b)).toBeGreaterThan(150);
  });
});
