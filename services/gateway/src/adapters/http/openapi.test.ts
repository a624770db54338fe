// The OpenAPI document and the server's routes must agree both ways (as Fastify tests its
// error table against its docs). The server is built, not started.
import { describe, expect, it } from 'vitest';
import { ERROR_CODES } from '@segserve/proto';
import { ApiKeys } from '../../domain/api-keys.js';
import { GatewayCore } from '../../app/gateway-core.js';
import { Readiness } from '../../app/readiness.js';
import { Router } from '../../app/router.js';
import { createLogger, MemoryLedger } from '@segserve/runtime';
import { GatewayMetrics } from '../metrics.js';
import { StaticRolloutSource } from '../rollout-source.js';
import { UpstreamPool } from '../upstreams.js';
import { openApiDocument, toFastifyPath } from './openapi.js';
import { buildHttpServer } from './server.js';

async function registeredRoutes(): Promise<string[]> {
  const logger = createLogger({ level: 'error', service: 'gateway', write: () => undefined });
  const metrics = new GatewayMetrics();
  const pool = new UpstreamPool({ maxMessageBytes: 1024 * 1024, retry: { maxAttempts: 2, initialBackoffMs: 10, maxBackoffMs: 10 }, keepaliveMs: 10_000 });
  const router = new Router({ source: new StaticRolloutSource([]), pool, metrics, logger });
  const core = new GatewayCore({ router, metrics, logger });
  const { app, routes } = await buildHttpServer({ core, readiness: new Readiness({ router }), metrics, apiKeys: new ApiKeys([]), logger, deadlineMs: 1000, maxUploadBytes: 1024, defaultModel: 'm', version: '0', ledger: new MemoryLedger({ capacityBytes: 1 << 20, maxWaiting: 0 }), budgetWaitMs: 0 });
  await app.close();
  return routes.map((r) => `${r.method} ${r.url}`).sort();
}

function documentedRoutes(): string[] {
  const paths = openApiDocument('0')['paths'] as Record<string, Record<string, unknown>>;
  return Object.entries(paths)
    .flatMap(([p, ops]) => Object.keys(ops).map((method) => `${method.toUpperCase()} ${toFastifyPath(p)}`))
    .sort();
}

describe('OpenAPI document', () => {
  it('documents every route the server registers, and nothing else', async () => {
    expect(documentedRoutes()).toEqual(await registeredRoutes());
  });

  it('is OpenAPI 3 with every response described and every error code listed', () => {
    const doc = openApiDocument('1.2.3');
    expect(doc['openapi']).toMatch(/^3\./);
    const paths = doc['paths'] as Record<string, Record<string, { responses: Record<string, { description?: string }> }>>;
    for (const [p, ops] of Object.entries(paths)) {
      for (const [m, op] of Object.entries(ops)) {
        for (const [status, r] of Object.entries(op.responses)) expect(r.description, `${m} ${p} ${status}`).toBeTruthy();
      }
    }
    const errorSchema = JSON.stringify((doc['components'] as Record<string, unknown>)['schemas']);
    for (const code of ERROR_CODES) expect(errorSchema).toContain(`"${code}"`);
  });

  it('every status of the error table appears on the segment route', () => {
    const paths = openApiDocument('0')['paths'] as Record<string, Record<string, { responses: Record<string, unknown> }>>;
    const statuses = Object.keys(paths['/v1/models/{model}/segment']?.['post']?.responses ?? {});
    expect(statuses).toEqual(expect.arrayContaining(['200', '400', '401', '404', '413', '415', '500', '503', '504']));
  });
});
