// The REST API as OpenAPI 3.1, served at GET /openapi.json. A unit test compares it with the
// routes the server registers, both ways: an undocumented route or a documented ghost fails.
import { ERROR_CODES } from '@segserve/proto';
import { TIMEOUT_HEADER } from '../../domain/deadline.js';

const ref = (name: string): { $ref: string } => ({ $ref: `#/components/schemas/${name}` });

const errorResponse = (description: string): object => ({
  description,
  content: { 'application/json': { schema: ref('Error') } },
});

const retryAfter = { 'Retry-After': { description: 'Seconds to wait before retrying.', schema: { type: 'integer' } } };

const versionHeaders = {
  'segserve-model-version': { description: 'The model version that served the request.', schema: { type: 'string' } },
  'segserve-model': { description: 'The model that served the request.', schema: { type: 'string' } },
};

const modelParam = { name: 'model', in: 'path', required: true, schema: { type: 'string', pattern: '^[a-z0-9][a-z0-9-]{0,62}$' } };

const segmentOperation = (summary: string, withModel: boolean): object => ({
  summary,
  security: [{}, { bearer: [] }],
  parameters: [
    ...(withModel ? [modelParam] : []),
    { name: 'format', in: 'query', required: false, description: '`color`: a palette PNG for people (class 0 transparent) instead of the class-index mask.', schema: { type: 'string', enum: ['color'] } },
    { name: 'version', in: 'query', required: false, description: 'Serve this version (stable or canary) instead of the weighted choice.', schema: { type: 'string' } },
    { name: TIMEOUT_HEADER, in: 'header', required: false, description: 'Shorten the upstream deadline (ms); never extends the gateway default.', schema: { type: 'integer', minimum: 1 } },
    { name: 'Accept', in: 'header', required: false, description: '`application/json` for class statistics with the mask in base64.', schema: { type: 'string' } },
  ],
  requestBody: {
    required: true,
    content: {
      'multipart/form-data': {
        schema: { type: 'object', required: ['image'], properties: { image: { type: 'string', format: 'binary', description: 'JPEG, PNG or WebP, at most 32 MiB.' } } },
      },
    },
  },
  responses: {
    '200': {
      description: 'The mask: one pixel per input pixel, value = class index (or a palette PNG with format=color).',
      headers: versionHeaders,
      content: { 'image/png': { schema: { type: 'string', format: 'binary' } }, 'application/json': { schema: ref('SegmentResult') } },
    },
    '400': errorResponse('INVALID_INPUT: no image field, empty file, malformed form, broken image.'),
    '401': errorResponse('UNAUTHENTICATED: API keys are configured and the request has none or a wrong one.'),
    '404': errorResponse('MODEL_NOT_FOUND.'),
    '413': errorResponse('TOO_LARGE: file, form or pixel count over a limit.'),
    '415': errorResponse('UNSUPPORTED_MEDIA_TYPE: not multipart, or not a JPEG/PNG/WebP image.'),
    '500': errorResponse('INTERNAL.'),
    '503': { ...errorResponse('OVERLOADED or UNAVAILABLE; retry after Retry-After.'), headers: retryAfter },
    '504': errorResponse('DEADLINE: the upstream did not answer in time.'),
  },
});

const staticFile = (summary: string, type: string): object => ({
  get: { summary, security: [], responses: { '200': { description: summary, content: { [type]: { schema: { type: 'string' } } } } } },
});

export function openApiDocument(version: string): Record<string, unknown> {
  return {
    openapi: '3.1.0',
    info: {
      title: 'segserve gateway',
      version,
      description: 'Semantic segmentation over REST. Errors are `{"error": {"code", "message"}}` with the status of the segserve error table.',
    },
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer', description: 'Required only when the gateway runs with SEGSERVE_API_KEYS.' } },
      schemas: {
        Error: {
          type: 'object',
          required: ['error'],
          properties: { error: { type: 'object', required: ['code', 'message'], properties: { code: { type: 'string', enum: [...ERROR_CODES] }, message: { type: 'string' } } } },
        },
        ClassShare: {
          type: 'object',
          properties: { index: { type: 'integer' }, name: { type: 'string' }, pixels: { type: 'integer' }, fraction: { type: 'number' }, color: { type: 'string', description: '#rrggbb used by format=color' } },
        },
        SegmentResult: {
          type: 'object',
          required: ['model', 'version', 'width', 'height', 'classes', 'mask', 'mask_format', 'timings'],
          properties: {
            model: { type: 'string' },
            version: { type: 'string' },
            track: { type: 'string', enum: ['stable', 'canary'] },
            width: { type: 'integer' },
            height: { type: 'integer' },
            classes: { type: 'array', items: ref('ClassShare') },
            mask: { type: 'string', contentEncoding: 'base64', contentMediaType: 'image/png' },
            mask_format: { type: 'string', enum: ['png', 'color'] },
            timings: {
              type: 'object',
              properties: { total_ms: { type: 'number' }, upstream_ms: { type: 'number' }, inference: { type: ['object', 'null'], additionalProperties: { type: 'number' } } },
            },
          },
        },
        Track: { type: ['object', 'null'], properties: { version: { type: 'string' }, weight: { type: 'number', description: 'percentage of requests' } } },
        ModelSummary: {
          type: 'object',
          properties: { name: { type: 'string' }, phase: { type: 'string' }, stable: ref('Track'), canary: ref('Track') },
        },
        ModelDescription: {
          allOf: [
            ref('ModelSummary'),
            {
              type: 'object',
              properties: {
                versions: { type: 'array', items: { type: 'string' } },
                platform: { type: 'string' },
                input_size: { type: ['object', 'null'], properties: { height: { type: 'integer' }, width: { type: 'integer' } } },
                classes: { type: 'array', items: { type: 'string' } },
                inputs: { type: 'array', items: { type: 'object' } },
                outputs: { type: 'array', items: { type: 'object' } },
              },
            },
          ],
        },
      },
    },
    paths: {
      '/': staticFile('The upload page.', 'text/html'),
      '/app.js': staticFile('Script of the upload page.', 'text/javascript'),
      '/style.css': staticFile('Style sheet of the upload page.', 'text/css'),
      '/openapi.json': { get: { summary: 'This document.', security: [], responses: { '200': { description: 'OpenAPI 3.1', content: { 'application/json': { schema: { type: 'object' } } } } } } },
      '/healthz': { get: { summary: 'Liveness: the process answers.', security: [], responses: { '200': { description: 'alive', content: { 'application/json': { schema: { type: 'object' } } } } } } },
      '/readyz': {
        get: {
          summary: 'Readiness: at least one upstream answers gRPC health SERVING and the gateway is not shutting down.',
          security: [],
          responses: { '200': { description: 'ready', content: { 'application/json': { schema: { type: 'object' } } } }, '503': { description: 'not ready', content: { 'application/json': { schema: { type: 'object' } } } } },
        },
      },
      '/metrics': { get: { summary: 'Prometheus metrics.', security: [], responses: { '200': { description: 'text exposition format', content: { 'text/plain': { schema: { type: 'string' } } } } } } },
      '/v1/models': {
        get: {
          summary: 'Models served, with their stable and canary versions and weights.',
          security: [{}, { bearer: [] }],
          responses: {
            '200': { description: 'models', content: { 'application/json': { schema: { type: 'object', properties: { models: { type: 'array', items: ref('ModelSummary') } } } } } },
            '401': errorResponse('UNAUTHENTICATED.'),
          },
        },
      },
      '/v1/models/{model}': {
        get: {
          summary: 'One model: versions, input size, classes, current stable/canary (from the upstreams’ OIP metadata and the rollout state).',
          security: [{}, { bearer: [] }],
          parameters: [modelParam],
          responses: {
            '200': { description: 'the model', content: { 'application/json': { schema: ref('ModelDescription') } } },
            '401': errorResponse('UNAUTHENTICATED.'),
            '404': errorResponse('MODEL_NOT_FOUND.'),
            '503': { ...errorResponse('UNAVAILABLE: no upstream of the model answered.'), headers: retryAfter },
          },
        },
      },
      '/v1/models/{model}/segment': { post: segmentOperation('Segment one image with a model.', true) },
      '/segmentator-api': { post: segmentOperation('The study’s original contract: segment one image with the default model.', false) },
    },
  };
}

/** `/v1/models/{model}` → `/v1/models/:model` (Fastify's syntax), for the consistency test. */
export function toFastifyPath(openApiPath: string): string {
  return openApiPath.replace(/\{([^}]+)\}/g, ':$1');
}
