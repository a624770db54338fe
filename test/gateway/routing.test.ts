// Weighted stable/canary routing between two real inference processes serving different
// versions of the tiny model; the split must honour the weight within statistical bounds.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { ipv4Target, metricValue, postImage, segmenterClient, segmentGrpc, startGatewayProc, startInference, tinySeg, TINY_IMAGES, type GatewayProc, type InferenceProc } from './stack.js';

const CANARY_WEIGHT = 30;
let v1: InferenceProc;
let v2: InferenceProc;
let gateway: GatewayProc;
const image = readFileSync(path.join(TINY_IMAGES, 'facade-00.png'));

beforeAll(async () => {
  [v1, v2] = await Promise.all([startInference(tinySeg('1')), startInference(tinySeg('2'))]);
  gateway = await startGatewayProc({ SEGSERVE_UPSTREAMS: `tiny-seg=${ipv4Target(v1)};tiny-seg/canary=${CANARY_WEIGHT}@${ipv4Target(v2)}` });
});

afterAll(async () => {
  await gateway?.[Symbol.asyncDispose]();
  await Promise.all([v1?.[Symbol.asyncDispose](), v2?.[Symbol.asyncDispose]()]);
});

/** Runs `n` requests with `concurrency` workers and counts the versions that served them. */
async function countVersions(n: number, concurrency: number, one: () => Promise<string>): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < n) {
        next++;
        const v = await one();
        counts.set(v, (counts.get(v) ?? 0) + 1);
      }
    }),
  );
  return counts;
}

/** |observed − expected| within 5 standard deviations of a binomial(n, p): fails ~1 in 3.5 million. */
function expectBinomial(observed: number, n: number, p: number): void {
  const sd = Math.sqrt(n * p * (1 - p));
  expect(Math.abs(observed - n * p), `observed ${observed}/${n}, expected ${n * p} ± ${(5 * sd).toFixed(1)}`).toBeLessThan(5 * sd);
}

describe('weighted routing', () => {
  it(`REST: about ${CANARY_WEIGHT}% of requests are served by the canary version`, async () => {
    const n = 300;
    const counts = await countVersions(n, 4, async () => {
      const res = await postImage(gateway.base, 'tiny-seg', image);
      expect(res.status).toBe(200);
      await res.arrayBuffer();
      return res.headers.get('segserve-model-version') ?? '?';
    });
    expect([...counts.keys()].sort()).toEqual(['1', '2']);
    expectBinomial(counts.get('2') ?? 0, n, CANARY_WEIGHT / 100);
  });

  it('gRPC: the same split, and the response names the version', async () => {
    const client = segmenterClient(gateway.address);
    const n = 200;
    try {
      const counts = await countVersions(n, 4, async () => {
        const r = await segmentGrpc(client, 'tiny-seg', image);
        if (!r.ok) throw new Error(r.details);
        return r.value.version;
      });
      expectBinomial(counts.get('2') ?? 0, n, CANARY_WEIGHT / 100);
    } finally {
      client.close();
    }
  });

  it('an explicit version goes to its track whatever the weight', async () => {
    for (const version of ['1', '2', '2', '1', '2']) {
      const res = await postImage(gateway.base, 'tiny-seg', image, { query: `?version=${version}` });
      expect(res.headers.get('segserve-model-version')).toBe(version);
    }
  });

  it('exports the weights', async () => {
    const text = await (await fetch(`${gateway.base}/metrics`)).text();
    expect(metricValue(text, 'segserve_gateway_route_weight', { model: 'tiny-seg', track: 'canary' })).toBe(CANARY_WEIGHT);
    expect(metricValue(text, 'segserve_gateway_route_weight', { model: 'tiny-seg', track: 'stable' })).toBe(100 - CANARY_WEIGHT);
    const models = (await (await fetch(`${gateway.base}/v1/models`)).json()) as unknown;
    expect(models).toEqual({ models: [{ name: 'tiny-seg', phase: 'Canary', stable: { version: '1', weight: 70 }, canary: { version: '2', weight: 30 } }] });
  });
});
