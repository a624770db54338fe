// The REST edge (docs/architecture.md#rest) on Fastify. Routes are thin: parse, call the core, format.
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import multipart from '@fastify/multipart';
import type { Socket } from 'node:net';
import { SegserveError } from '@segserve/proto';
import type { MemoryLedger } from '@segserve/runtime';
import type { ApiKeys } from '../../domain/api-keys.js';
import type { GatewayCore } from '../../app/gateway-core.js';
import type { Readiness } from '../../app/readiness.js';
import type { GatewayMetrics } from '../metrics.js';
import type { Logger } from '@segserve/runtime';
import { clientErrorResponse, httpError, sendError } from './errors.js';
import { openApiDocument } from './openapi.js';
import { loadPageAssets, PAGE_SECURITY_HEADERS, type PageAsset } from './page.js';
import { answerWithoutContinue, continueBody, deferContinue } from './continue.js';
import { handleSegment } from './segment-route.js';
import { discardUnreadBody } from './unread-body.js';
import { multipartLimits } from './upload.js';

export interface HttpServerOptions {
  readonly core: GatewayCore;
  readonly readiness: Readiness;
  readonly metrics: GatewayMetrics;
  readonly apiKeys: ApiKeys;
  readonly logger: Logger;
  readonly deadlineMs: number;
  readonly maxUploadBytes: number;
  readonly defaultModel: string;
  /** The gateway's own version (OpenAPI info). */
  readonly version: string;
  readonly pageAssets?: readonly PageAsset[];
  /** The gateway's memory budget for uploads. */
  readonly ledger: MemoryLedger;
  /** How long an upload may wait for room in the budget before it is OVERLOADED, ms. */
  readonly budgetWaitMs: number;
}

export interface RegisteredRoute {
  readonly method: string;
  readonly url: string;
}

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Needs an API key when keys are configured (everything but health, metrics, page, docs). */
    readonly protected?: boolean;
    /** Answers `Expect: 100-continue` itself, once the request has passed its door (continue.ts). */
    readonly continueAtTheDoor?: boolean;
  }
}

export async function buildHttpServer(options: HttpServerOptions): Promise<{ app: FastifyInstance; routes: RegisteredRoute[] }> {
  const { core, readiness, metrics, apiKeys, logger } = options;
  const app = Fastify({
    logger: false,
    bodyLimit: 64 * 1024, // non-multipart bodies: nothing the API accepts is bigger
    return503OnClosing: false, // the onRequest hook answers with the table's UNAVAILABLE instead
    forceCloseConnections: 'idle',
    keepAliveTimeout: 65_000, // above common load-balancer idle timeouts (60 s)
    requestTimeout: 120_000, // a slow upload of 32 MiB still fits; a stalled one is dropped
    // The router refuses a malformed URL or a path parameter over 100 characters (no model name
    // is longer than 63) before any route runs; answer those with the table too, not with
    // Fastify's own body (found by the fuzzer, docs/reliability.md).
    frameworkErrors: (err, _request, reply) => {
      const what = err.code === 'FST_ERR_MAX_PARAM_LENGTH' ? 'a path segment is longer than 100 characters' : 'the URL is not valid';
      void sendError(reply, new SegserveError('INVALID_INPUT', what));
    },
    // What Node's HTTP parser refuses before Fastify sees a request (headers over 16 KiB,
    // malformed requests, a request that took too long to arrive): the table's shape too.
    clientErrorHandler: (err: Error & { code?: string }, socket: Socket) => {
      if (err.code === 'ECONNRESET' || socket.destroyed) return;
      if (socket.writable) socket.write(clientErrorResponse(err.code));
      socket.destroy(err);
    },
  });
  const routes: RegisteredRoute[] = [];
  app.addHook('onRoute', (r) => {
    for (const method of [r.method].flat()) if (method !== 'HEAD') routes.push({ method, url: r.url });
  });

  await app.register(multipart, { limits: multipartLimits(options.maxUploadBytes) });
  deferContinue(app.server);

  app.addHook('onRequest', async (request: FastifyRequest, reply: FastifyReply) => {
    if (readiness.shuttingDown && request.routeOptions.config.protected) {
      void reply.header('connection', 'close');
      return sendError(reply, new SegserveError('UNAVAILABLE', 'the gateway is shutting down'));
    }
    if (request.routeOptions.config.protected && !apiKeys.acceptsAuthorization(request.headers.authorization)) {
      return sendError(reply, new SegserveError('UNAUTHENTICATED', 'a valid API key is required (Authorization: Bearer <key>)'));
    }
    if (!request.routeOptions.config.continueAtTheDoor) continueBody(reply.raw);
    return undefined;
  });

  // While draining, every response closes its connection: a keep-alive socket left open by a
  // request that was in flight at SIGTERM would otherwise hold the server until the grace ends.
  // An answer sent before the request's body was read (a refusal at the door): the rest of the
  // body is still read, so that a client writing it all before reading gets its answer, but
  // without a copy of every chunk (unread-body.ts).
  app.addHook('onSend', async (request, reply, payload) => {
    if (readiness.shuttingDown) void reply.header('connection', 'close');
    answerWithoutContinue(reply.raw);
    discardUnreadBody(request.raw);
    return payload;
  });

  app.setErrorHandler((err, _request, reply) => {
    const e = httpError(err);
    if (e.code === 'INTERNAL') logger.error('request failed', { error: err });
    return sendError(reply, e);
  });
  app.setNotFoundHandler((request, reply) =>
    // The table has no "no such route"; a plain 404 with INVALID_INPUT tells the client its URL
    // is wrong without pretending a model is missing.
    sendError(reply, new SegserveError('INVALID_INPUT', `no route ${request.method} ${request.url.split('?')[0] ?? ''}`), 404),
  );

  const segment = { core, deadlineMs: options.deadlineMs, maxUploadBytes: options.maxUploadBytes, ledger: options.ledger, budgetWaitMs: options.budgetWaitMs, apiKeys };
  app.post<{ Params: { model: string } }>('/v1/models/:model/segment', { config: { protected: true, continueAtTheDoor: true } }, (request, reply) => handleSegment(segment, request.params.model, request, reply));
  app.post('/segmentator-api', { config: { protected: true, continueAtTheDoor: true } }, (request, reply) => handleSegment(segment, options.defaultModel, request, reply));

  app.get('/v1/models', { config: { protected: true } }, () => ({ models: core.router.states().map((s) => core.summarize(s)) }));
  app.get<{ Params: { model: string } }>('/v1/models/:model', { config: { protected: true } }, async (request) => {
    const ctx = { deadline: Date.now() + Math.min(options.deadlineMs, 5000) };
    return core.describe(request.params.model, ctx);
  });

  app.get('/healthz', () => ({ status: 'ok' }));
  app.get('/readyz', async (_request, reply) => {
    const report = await readiness.check();
    if (report.ready) return report;
    const reason = report.shutting_down ? 'the gateway is shutting down' : 'no upstream is serving';
    return reply.code(503).header('retry-after', '1').send({ ...report, error: { code: 'UNAVAILABLE', message: reason } });
  });
  app.get('/metrics', async (_request, reply) => reply.type(metrics.contentType).send(await metrics.render()));

  const document = openApiDocument(options.version);
  app.get('/openapi.json', () => document);

  for (const asset of options.pageAssets ?? loadPageAssets()) {
    app.get(asset.route, (_request, reply) => reply.headers(PAGE_SECURITY_HEADERS).type(asset.contentType).send(asset.body));
  }

  await app.ready();
  return { app, routes };
}
