// Clients the benchmarks drive: Segment over gRPC (inference direct, or the gateway) and the
// REST multipart upload, each returning a uniform outcome {code, ms, retryAfterS?} where `code`
// is 'OK' or a code of the error table (docs/architecture.md#errors) (or 'grpc:<status>' / 'http:<status>' / 'NETWORK' for an
// answer outside the table — which the reliability checks count as a failure).
import * as grpc from '@grpc/grpc-js';
import http from 'node:http';
import { ERROR_CODE_METADATA_KEY, ERROR_CODES, loadProtos } from '@segserve/proto';

const MAX_MESSAGE = 64 * 1024 * 1024;
const TABLE = new Set(ERROR_CODES);

export function segmenterClient(address) {
  const protos = loadProtos();
  return new protos.segmenter.segserve.v1.Segmenter(address, grpc.credentials.createInsecure(), {
    'grpc.max_send_message_length': MAX_MESSAGE,
    'grpc.max_receive_message_length': MAX_MESSAGE,
  });
}

export function oipClient(address) {
  const protos = loadProtos();
  return new protos.predictV2.inference.GRPCInferenceService(address, grpc.credentials.createInsecure(), {
    'grpc.max_send_message_length': MAX_MESSAGE,
    'grpc.max_receive_message_length': MAX_MESSAGE,
  });
}

/** The segserve code of a gRPC error: its trailer when a segserve process wrote it. */
export function grpcCode(err) {
  const code = err.metadata?.get(ERROR_CODE_METADATA_KEY)?.[0];
  if (typeof code === 'string' && TABLE.has(code)) return code;
  return `grpc:${grpc.status[err.code] ?? err.code}`;
}

/** One Segment call; resolves with {code, ms, response?, retryAfterS?} and never rejects. */
export function segment(client, request, { timeoutMs = 120_000 } = {}) {
  const t0 = performance.now();
  return new Promise((resolve) => {
    client.Segment(request, new grpc.Metadata(), { deadline: Date.now() + timeoutMs }, (err, response) => {
      const ms = performance.now() - t0;
      if (!err) return resolve({ code: 'OK', ms, response });
      const ra = Number(err.metadata?.get('retry-after')?.[0]);
      resolve({ code: grpcCode(err), ms, retryAfterS: Number.isFinite(ra) ? ra : undefined, details: err.details });
    });
  });
}

/** One OIP ModelInfer call; same outcome shape. */
export function modelInfer(client, request, { timeoutMs = 120_000 } = {}) {
  const t0 = performance.now();
  return new Promise((resolve) => {
    client.ModelInfer(request, new grpc.Metadata(), { deadline: Date.now() + timeoutMs }, (err, response) => {
      const ms = performance.now() - t0;
      if (!err) return resolve({ code: 'OK', ms, response, grpcStatus: 0 });
      resolve({ code: grpcCode(err), ms, grpcStatus: err.code, details: err.details });
    });
  });
}

/** A multipart/form-data body with one file part, built once so the client does no work per request. */
export function multipartBody(image, { field = 'image', filename = 'upload.jpg', contentType = 'image/jpeg' } = {}) {
  const boundary = `----segserve-bench-${Math.random().toString(16).slice(2)}`;
  const head = Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="${field}"; filename="${filename}"\r\nContent-Type: ${contentType}\r\n\r\n`);
  const tail = Buffer.from(`\r\n--${boundary}--\r\n`);
  return { body: Buffer.concat([head, image, tail]), contentType: `multipart/form-data; boundary=${boundary}` };
}

/** Keep-alive HTTP agent sized for `concurrency` parallel uploads. */
export function httpAgent(concurrency) {
  return new http.Agent({ keepAlive: true, maxSockets: concurrency, maxFreeSockets: concurrency });
}

/**
 * POSTs a prepared body; resolves with {code, ms, status, bytes, retryAfterS?}. `code` comes from
 * the JSON error body ({error: {code}}) for non-200 answers.
 */
export function postRaw(url, { body, contentType, headers = {} }, { agent, timeoutMs = 120_000 } = {}) {
  const t0 = performance.now();
  return new Promise((resolve) => {
    const req = http.request(url, { method: 'POST', agent, headers: { 'content-type': contentType, 'content-length': body.length, ...headers }, timeout: timeoutMs }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('error', () => resolve({ code: 'NETWORK', ms: performance.now() - t0, status: res.statusCode }));
      res.on('end', () => {
        const ms = performance.now() - t0;
        const data = Buffer.concat(chunks);
        const ra = Number(res.headers['retry-after']);
        const retryAfterS = Number.isFinite(ra) ? ra : undefined;
        if (res.statusCode === 200) return resolve({ code: 'OK', ms, status: 200, bytes: data.length, body: data, contentType: res.headers['content-type'], serverTiming: res.headers['server-timing'] });
        let code = `http:${res.statusCode}`;
        try {
          const c = JSON.parse(data.toString('utf8'))?.error?.code;
          if (typeof c === 'string' && TABLE.has(c)) code = c;
        } catch {
          // not JSON: stays http:<status>
        }
        resolve({ code, ms, status: res.statusCode, retryAfterS, body: data });
      });
    });
    req.on('timeout', () => req.destroy(new Error('client timeout')));
    req.on('error', (err) => resolve({ code: 'NETWORK', ms: performance.now() - t0, error: err.message }));
    req.end(body);
  });
}

/** True when `code` is in the error table of docs/architecture.md#errors (or OK). */
export const isTableCode = (code) => code === 'OK' || TABLE.has(code);
