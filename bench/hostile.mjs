// The `hostile` scenario (issue 11): inference and gateway started as the image starts them (V8
// heap capped at 192 MiB, the image's malloc settings, API keys on, the inference Deployment's
// concurrency and queue), then every attack of the issue alone and all of them at once, while a
// well-behaved client (a customer with its own API key) keeps uploading ordinary photographs
// through the gateway; the attacks that need a key use another customer's. Per attack:
// peak RSS of each process (VmHWM reset before the attack, and VmRSS sampled), whether each
// process survived, the code of every response (a table code, or what came instead), the
// latency of the ordinary uploads against their p95 before any attack (same run), the
// slowest /healthz answer, and each process's CPU and garbage-collection seconds over the attack.
//
//   node bench/hostile.mjs [--model models/facade-ads/2] [--attacks a,b,…] [--rounds 1] [--out file.json]
//        [--before /path/to/other/checkout [--turns 2]]
//
// `--attacks` picks attacks by name; `all-at-once` among them is the combination of every attack
// (not only of the ones picked), e.g. `--attacks rest-26mb-x20,all-at-once`. Without `--attacks`:
// each attack alone, then all at once.
//
// --before: the whole run against another built checkout's inference and gateway too, this tree's
// and that one's in turn, before–after, after–before, … for --turns pairs (bench/lib/trees.mjs):
// this bench, each tree's services, started with the image's settings as this tree has them. With
// --out, each run's results go to <file> with `-<tree>-<n>` before its extension.
//
// Targets: no process dies, each peak RSS ≤ 512 MiB, every request gets a table code, the
// ordinary uploads' p95 during an attack ≤ 2 × their p95 before.
import * as grpc from '@grpc/grpc-js';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { deflateSync } from 'node:zlib';
import sharp from 'sharp';
import { ERROR_CODE_METADATA_KEY } from '@segserve/proto';
import { PNG_SIGNATURE, pngChunk, pngHeader } from '@segserve/runtime';
import { httpAgent, isTableCode, multipartBody, postRaw } from './lib/clients.mjs';
import { loadImages } from './lib/images.mjs';
import { MemoryWatch, REPO, cpuSeconds, defaultModelDir, loadAverage, machine, sleep, startGateway, startInference } from './lib/procs.mjs';
import { treesOf, turnOrder } from './lib/trees.mjs';
import { countBy, percentile, round } from './lib/stats.mjs';
import { args } from './lib/args.mjs';

/** The container image's V8 heap cap (deploy/docker/Dockerfile, deploy/k8s). */
const IMAGE_NODE_OPTIONS = '--max-old-space-size=192';
/** The inference Deployment's admission settings (deploy/k8s/base/inference). */
const INFERENCE_DEPLOYMENT_ENV = { SEGSERVE_MAX_CONCURRENCY: '2', SEGSERVE_MAX_QUEUE: '16' };
/** The attacker's key: every attack that needs one is a customer with a valid key. */
const API_KEY = 'hostile-bench-key-0123456789abcdef';
/** The well-behaved client's own key: another customer of the same gateway. */
const OBSERVER_KEY = 'hostile-bench-ordinary-client-key-01';
const MiB = 2 ** 20;
const GRPC_MAX = 64 * MiB;
const TABLE_CODES_OK = (code) => isTableCode(code);

// ---- protobuf wire format, by hand: attacks are messages no well-behaved encoder would write ----

function varint(n) {
  const out = [];
  let v = BigInt(n);
  do {
    let b = Number(v & 0x7fn);
    v >>= 7n;
    if (v > 0n) b |= 0x80;
    out.push(b);
  } while (v > 0n);
  return Buffer.from(out);
}
const tag = (field, wire) => varint((field << 3) | wire);
const lengthDelimited = (field, bytes) => Buffer.concat([tag(field, 2), varint(bytes.length), bytes]);
const str = (field, s) => lengthDelimited(field, Buffer.from(s, 'utf8'));
/** `count` copies of one encoded field. */
const repeatField = (bytes, count) => Buffer.alloc(bytes.length * count, bytes);

/** ModelInferRequest with 1,000,000 empty `inputs` entries (2 bytes each on the wire). */
const millionEmptyInputs = (model) => Buffer.concat([str(1, model), repeatField(lengthDelimited(5, Buffer.alloc(0)), 1_000_000)]);
/** One input whose `shape` has 1,000,000 dims (packed varints of 1). */
const millionShapeDims = (model) => Buffer.concat([str(1, model), lengthDelimited(5, Buffer.concat([str(1, 'input'), str(2, 'FP32'), lengthDelimited(3, Buffer.alloc(1_000_000, 1))]))]);
/** One input, then 4,000,000 empty raw_input_contents entries. */
const millionsEmptyRaw = (model) =>
  Buffer.concat([str(1, model), lengthDelimited(5, Buffer.concat([str(1, 'input'), str(2, 'FP32'), lengthDelimited(3, Buffer.from([1, 3, 192, 0x80, 0x02]))])), repeatField(lengthDelimited(7, Buffer.alloc(0)), 4_000_000)]);
/** SegmentRequest {model, image}. */
const segmentRequest = (model, image) => Buffer.concat([str(1, model), lengthDelimited(3, image)]);
/** Not protobuf: a string field, then a tag with wire type 7 (there is none). */
const undecodable = () => Buffer.concat([str(1, 'fac'), Buffer.from([0x0f, 0x00]), Buffer.from('not a protobuf message')]);

// ---- images ------------------------------------------------------------------------------------

const ihdr = (width, height) => pngHeader(width, height, 8, 0); // 8-bit greyscale

/** A valid, all-black greyscale PNG of width × height: tiny on the wire, huge decoded. */
function blackPng(width, height) {
  const scanlines = Buffer.alloc((width + 1) * height);
  return Buffer.concat([PNG_SIGNATURE, pngChunk('IHDR', ihdr(width, height)), pngChunk('IDAT', deflateSync(scanlines, { level: 9 })), pngChunk('IEND', Buffer.alloc(0))]);
}

/** A two-frame animated PNG (acTL, fcTL, fdAT), 64×64. */
function animatedPng() {
  const w = 64;
  const h = 64;
  const row = Buffer.concat([Buffer.from([0]), Buffer.alloc(w, 0x80)]); // filter 0, mid-grey
  const frame = deflateSync(Buffer.alloc(row.length * h, row));
  const actl = Buffer.alloc(8);
  actl.writeUInt32BE(2, 0); // frames
  actl.writeUInt32BE(0, 4); // plays forever
  const fctl = (seq) => {
    const b = Buffer.alloc(26);
    b.writeUInt32BE(seq, 0);
    b.writeUInt32BE(w, 4);
    b.writeUInt32BE(h, 8);
    b.writeUInt16BE(1, 20); // delay 1/10 s
    b.writeUInt16BE(10, 22);
    return b;
  };
  const seq2 = Buffer.alloc(4);
  seq2.writeUInt32BE(2, 0);
  return Buffer.concat([
    PNG_SIGNATURE,
    pngChunk('IHDR', ihdr(w, h)),
    pngChunk('acTL', actl),
    pngChunk('fcTL', fctl(0)),
    pngChunk('IDAT', frame),
    pngChunk('fcTL', fctl(1)),
    pngChunk('fdAT', Buffer.concat([seq2, frame])),
    pngChunk('IEND', Buffer.alloc(0)),
  ]);
}

/** A 4898×4898 single-colour WebP (about a kilobyte). */
const hugeFlatWebp = () => sharp({ create: { width: 4898, height: 4898, channels: 3, background: { r: 128, g: 128, b: 128 } } }).webp({ lossless: true, effort: 6 }).toBuffer();

/** A valid JPEG followed by zero padding up to `bytes`. */
const paddedJpeg = (jpeg, bytes) => Buffer.concat([jpeg, Buffer.alloc(Math.max(0, bytes - jpeg.length))]);

// ---- clients -----------------------------------------------------------------------------------

const identity = (b) => b;

/** A gRPC client that sends prepared bytes, unchanged, to any method. */
function rawClient(address) {
  return new grpc.Client(address, grpc.credentials.createInsecure(), {
    'grpc.max_send_message_length': GRPC_MAX,
    'grpc.max_receive_message_length': GRPC_MAX,
    'grpc.enable_retries': 0,
  });
}

/** One unary call with raw bytes; resolves {code, ms, details}: the trailer's table code, OK, or `grpc:<STATUS>`. */
function rawCall(client, method, bytes, { key, timeoutMs = 60_000 } = {}) {
  const md = new grpc.Metadata();
  if (key) md.set('authorization', `Bearer ${key}`);
  const t0 = performance.now();
  return new Promise((resolve) => {
    client.makeUnaryRequest(method, identity, identity, bytes, md, { deadline: Date.now() + timeoutMs }, (err) => {
      const ms = performance.now() - t0;
      if (!err) return resolve({ code: 'OK', ms });
      const sent = err.metadata?.get(ERROR_CODE_METADATA_KEY)?.[0];
      resolve({ code: typeof sent === 'string' && isTableCode(sent) ? sent : `grpc:${grpc.status[err.code] ?? err.code}`, ms, details: err.details });
    });
  });
}

/** The name of the combined attack (every attack at the same time). */
const ALL_AT_ONCE = 'all-at-once';
const SEGMENT = '/segserve.v1.Segmenter/Segment';
const MODEL_INFER = '/inference.GRPCInferenceService/ModelInfer';

/** Sends `raw` on a fresh TCP connection and reads the answer: {code, ms, status}. */
function rawHttp(port, raw, timeoutMs = 30_000) {
  const t0 = performance.now();
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    const chunks = [];
    const finish = () => {
      const text = Buffer.concat(chunks).toString('latin1');
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0);
      const body = text.split('\r\n\r\n').slice(1).join('\r\n\r\n');
      let code = status ? `http:${status}` : 'NETWORK';
      try {
        const c = JSON.parse(body)?.error?.code;
        if (typeof c === 'string' && isTableCode(c)) code = c;
      } catch {
        // not JSON
      }
      resolve({ code, ms: performance.now() - t0, status });
    };
    socket.setTimeout(timeoutMs, () => socket.destroy());
    socket.on('data', (c) => chunks.push(c));
    socket.on('close', finish);
    socket.on('error', () => undefined);
    socket.write(raw);
  });
}

// ---- the attacks -------------------------------------------------------------------------------

/**
 * Each attack: {name, what, run(ctx) → Promise<outcome[]>} with outcome {label, code, ms}.
 * `expect` lists the codes that are the right answer (anything else in the table still counts as
 * "a table code", but is reported).
 */
function attacks(fixtures) {
  const { model } = fixtures;
  const label = (l, p) => p.then((o) => ({ label: l, ...o }));
  return [
    {
      name: 'oip-million-inputs',
      what: 'ModelInfer with 1,000,000 empty inputs (2 MB): gateway without and with a key, inference',
      expect: ['UNAUTHENTICATED', 'INVALID_INPUT', 'TOO_LARGE'],
      run: ({ gw, inf }) => [
        label('gateway, no key', rawCall(gw, MODEL_INFER, fixtures.millionInputs)),
        label('gateway, key', rawCall(gw, MODEL_INFER, fixtures.millionInputs, { key: API_KEY })),
        label('inference', rawCall(inf, MODEL_INFER, fixtures.millionInputs)),
      ],
    },
    {
      name: 'oip-shape-dims',
      what: 'ModelInfer, one input with 1,000,000 shape dims: gateway (key) and inference',
      expect: ['INVALID_INPUT', 'TOO_LARGE'],
      run: ({ gw, inf }) => [label('gateway, key', rawCall(gw, MODEL_INFER, fixtures.shapeDims, { key: API_KEY })), label('inference', rawCall(inf, MODEL_INFER, fixtures.shapeDims))],
    },
    {
      name: 'oip-empty-raw',
      what: 'ModelInfer with 4,000,000 empty raw_input_contents (8 MB): gateway (key) and inference',
      expect: ['INVALID_INPUT', 'TOO_LARGE'],
      run: ({ gw, inf }) => [label('gateway, key', rawCall(gw, MODEL_INFER, fixtures.emptyRaw, { key: API_KEY })), label('inference', rawCall(inf, MODEL_INFER, fixtures.emptyRaw))],
    },
    {
      name: 'rest-26mb-x20',
      what: '20 concurrent REST uploads of 26 MB (a JPEG and padding) to the gateway',
      expect: ['OK', 'INVALID_INPUT', 'TOO_LARGE', 'OVERLOADED'],
      run: ({ gwHttp }) => {
        const agent = httpAgent(20);
        const out = Array.from({ length: 20 }, (_, i) => label(`upload ${i}`, postRaw(`${gwHttp}/v1/models/${model}/segment`, { ...fixtures.bigForm, headers: { authorization: `Bearer ${API_KEY}` } }, { agent, timeoutMs: 120_000 })));
        void Promise.all(out).then(() => agent.destroy());
        return out;
      },
    },
    {
      name: 'grpc-26mb-x40-inference',
      what: '40 concurrent gRPC Segment calls of 26 MB straight to inference',
      expect: ['OK', 'INVALID_INPUT', 'TOO_LARGE', 'OVERLOADED'],
      run: ({ inf }) => Array.from({ length: 40 }, (_, i) => label(`call ${i}`, rawCall(inf, SEGMENT, fixtures.bigSegment, { timeoutMs: 120_000 }))),
    },
    {
      name: 'png-24mp-lines-x3',
      what: '24000000×1 and 1×24000000 PNGs, three of each at once, through the gateway',
      expect: ['OK', 'INVALID_INPUT', 'TOO_LARGE', 'OVERLOADED', 'DEADLINE'],
      run: ({ gwHttp }) => {
        const agent = httpAgent(6);
        const headers = { authorization: `Bearer ${API_KEY}` };
        const out = [];
        for (let i = 0; i < 3; i++) {
          out.push(label(`wide ${i}`, postRaw(`${gwHttp}/v1/models/${model}/segment`, { ...fixtures.wideForm, headers }, { agent, timeoutMs: 120_000 })));
          out.push(label(`tall ${i}`, postRaw(`${gwHttp}/v1/models/${model}/segment`, { ...fixtures.tallForm, headers }, { agent, timeoutMs: 120_000 })));
        }
        void Promise.all(out).then(() => agent.destroy());
        return out;
      },
    },
    {
      name: 'webp-4898-color',
      what: '980-byte-class 4898×4898 WebP with ?format=color through the gateway',
      expect: ['OK', 'TOO_LARGE', 'INVALID_INPUT', 'OVERLOADED'],
      run: ({ gwHttp }) => [label('color', postRaw(`${gwHttp}/v1/models/${model}/segment?format=color`, { ...fixtures.webpForm, headers: { authorization: `Bearer ${API_KEY}` } }, { timeoutMs: 120_000 }))],
    },
    {
      name: 'apng',
      what: 'an animated PNG (acTL) through the gateway and straight to inference',
      expect: ['INVALID_INPUT', 'UNSUPPORTED_MEDIA_TYPE'],
      run: ({ gwHttp, inf }) => [
        label('gateway REST', postRaw(`${gwHttp}/v1/models/${model}/segment`, { ...fixtures.apngForm, headers: { authorization: `Bearer ${API_KEY}` } })),
        label('inference gRPC', rawCall(inf, SEGMENT, fixtures.apngSegment)),
      ],
    },
    {
      name: 'undecodable-protobuf',
      what: 'bytes that are not a SegmentRequest / ModelInferRequest: gateway (key) and inference',
      expect: ['INVALID_INPUT'],
      run: ({ gw, inf }) => [
        label('gateway Segment', rawCall(gw, SEGMENT, fixtures.undecodable, { key: API_KEY })),
        label('gateway ModelInfer', rawCall(gw, MODEL_INFER, fixtures.undecodable, { key: API_KEY })),
        label('inference Segment', rawCall(inf, SEGMENT, fixtures.undecodable)),
        label('inference ModelInfer', rawCall(inf, MODEL_INFER, fixtures.undecodable)),
      ],
    },
    {
      name: 'oversize-grpc',
      what: 'a 40 MiB message (over the 32 MiB limit): gateway (key) and inference',
      expect: ['TOO_LARGE'],
      run: ({ gw, inf }) => [label('gateway', rawCall(gw, SEGMENT, fixtures.oversize, { key: API_KEY })), label('inference', rawCall(inf, SEGMENT, fixtures.oversize))],
    },
    {
      name: 'http-431',
      what: 'a REST request with 64 KiB of headers',
      expect: ['TOO_LARGE', 'INVALID_INPUT'],
      run: ({ gwPort }) => [label('431', rawHttp(gwPort, `GET /v1/models HTTP/1.1\r\nHost: x\r\nX-Pad: ${'a'.repeat(64 * 1024)}\r\n\r\n`))],
    },
    {
      name: 'malformed-http',
      what: 'bytes that are not HTTP, and a request line with a bad header',
      expect: ['INVALID_INPUT'],
      run: ({ gwPort }) => [label('garbage', rawHttp(gwPort, 'NOT HTTP AT ALL\r\n\r\n')), label('bad header', rawHttp(gwPort, 'GET /healthz HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n'))],
    },
  ];
}

async function makeFixtures(model, images) {
  const jpeg = images[0].bytes;
  const big = paddedJpeg(jpeg, 26_000_000);
  const form = (bytes, filename, contentType) => multipartBody(bytes, { filename, contentType });
  const webp = await hugeFlatWebp();
  const wide = blackPng(24_000_000, 1);
  const tall = blackPng(1, 24_000_000);
  const apng = animatedPng();
  return {
    model,
    millionInputs: millionEmptyInputs(model),
    shapeDims: millionShapeDims(model),
    emptyRaw: millionsEmptyRaw(model),
    bigForm: form(big, 'big.jpg', 'image/jpeg'),
    bigSegment: segmentRequest(model, big),
    wideForm: form(wide, 'wide.png', 'image/png'),
    tallForm: form(tall, 'tall.png', 'image/png'),
    webpForm: form(webp, 'flat.webp', 'image/webp'),
    apngForm: form(apng, 'anim.png', 'image/png'),
    apngSegment: segmentRequest(model, apng),
    undecodable: undecodable(),
    oversize: segmentRequest(model, Buffer.alloc(40 * MiB)),
    sizes: { webp: webp.length, wide: wide.length, tall: tall.length, apng: apng.length, million_inputs: millionEmptyInputs(model).length },
  };
}

// ---- the run -----------------------------------------------------------------------------------

async function startStack(modelDir, model, root) {
  const inference = await startInference(modelDir, { NODE_OPTIONS: IMAGE_NODE_OPTIONS, ...INFERENCE_DEPLOYMENT_ENV }, 'inference', [], root);
  const gateway = await startGateway(`${model}=ipv4:127.0.0.1:${inference.line.grpc_port}`, { NODE_OPTIONS: IMAGE_NODE_OPTIONS, SEGSERVE_API_KEYS: `${API_KEY},${OBSERVER_KEY}` }, 'gateway', root);
  return { inference, gateway };
}

/**
 * The well-behaved client (workers/hostile-observer.mjs, its own thread): ordinary uploads and a
 * health probe, continuously; `window()` returns what happened since the last one.
 */
function startObserver({ gwHttp, model, images, concurrency = 2 }) {
  const worker = new Worker(new URL('./workers/hostile-observer.mjs', import.meta.url), {
    workerData: { gwHttp, model, imageFiles: images.map((i) => i.file), key: OBSERVER_KEY, concurrency },
  });
  const next = () => new Promise((resolve) => worker.once('message', resolve));
  return {
    begin: () => worker.postMessage({ cmd: 'begin' }),
    async end() {
      const r = next();
      worker.postMessage({ cmd: 'end' });
      const { uploads, health } = await r;
      return { uploads, health: { max_ms: round(health.maxMs), answered: health.answered, failures: health.failures } };
    },
    async stop() {
      const r = next();
      worker.postMessage({ cmd: 'stop' });
      await r;
      await worker.terminate();
    },
  };
}

const alive = (proc) => !proc.hasExited();

/**
 * Polls the inference service's segserve_inference_admitted_bytes (what its admission has
 * charged) and nodejs_external_memory_bytes (Buffers and other memory outside V8's heap) every
 * 100 ms; `stop()` gives the largest values seen, MiB — beside the peak RSS, they show how much of
 * the peak the charges account for, and how much is Buffers not (yet) collected.
 */
function watchAdmitted(metricsPort) {
  const max = { admitted: 0, external: 0 };
  let busy = false;
  const timer = setInterval(async () => {
    if (busy) return;
    busy = true;
    try {
      const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`, { signal: AbortSignal.timeout(2_000) })).text();
      for (const [k, name] of [['admitted', 'segserve_inference_admitted_bytes'], ['external', 'nodejs_external_memory_bytes']]) {
        const v = Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1]);
        if (Number.isFinite(v)) max[k] = Math.max(max[k], v);
      }
    } catch {
      // not answering this time
    } finally {
      busy = false;
    }
  }, 100);
  return { stop: () => (clearInterval(timer), { admitted_max_mb: round(max.admitted / MiB), external_max_mb: round(max.external / MiB) }) };
}

/**
 * Where the ordinary uploads' time went, ms: p50 and p95 of the client's wall time and of its
 * parts — before the gateway's handler and after it (`client`: connection, parsing, the answer's
 * way back), in the gateway outside the upstream call (`gateway`: the wait for its memory budget,
 * reading the body), between the gateway and the inference handler (`transfer`: the gRPC hop
 * both ways), and in inference (`queue` for memory and a slot, `decode`, `infer`, the rest).
 * `tail` is the mean of each part over the slowest 5 % of the uploads.
 */
function ordinarySplit(uploads) {
  const rows = uploads
    .filter((o) => o.code === 'OK' && o.split)
    .map(({ ms, split: s }) => ({
      wall: ms,
      client: ms - s.gateway,
      gateway: s.gateway - s.upstream,
      transfer: s.upstream - s.inference,
      queue: s.queue,
      decode: s.decode,
      infer: s.infer,
      inference_rest: s.inference - s.queue - s.decode - s.infer,
    }));
  if (rows.length === 0) return undefined;
  const keys = Object.keys(rows[0]);
  const slowest = [...rows].sort((a, b) => b.wall - a.wall).slice(0, Math.max(1, Math.ceil(rows.length / 20)));
  const per = (f) => Object.fromEntries(keys.map((k) => [k, round(f(rows.map((r) => r[k])))]));
  return { p50: per((v) => percentile(v, 50)), p95: per((v) => percentile(v, 95)), tail: Object.fromEntries(keys.map((k) => [k, round(slowest.reduce((a, r) => a + r[k], 0) / slowest.length)])) };
}

/** A process's Prometheus text ('' when it does not answer). */
async function metricsText(url) {
  try {
    return await (await fetch(url, { signal: AbortSignal.timeout(10_000) })).text();
  } catch {
    return '';
  }
}

/**
 * The gateway's longest event-loop delay since the previous scrape, ms (prom-client's
 * nodejs_eventloop_lag_max_seconds, reset at every scrape); NaN when it did not answer.
 */
const loopMaxMs = (text) => round(Number(/^nodejs_eventloop_lag_max_seconds(?:\{[^}]*\})? (\S+)$/m.exec(text)?.[1]) * 1000);
const gatewayLoopMaxMs = async (gwHttp) => loopMaxMs(await metricsText(`${gwHttp}/metrics`));

/** Seconds of garbage collection per kind so far (prom-client's nodejs_gc_duration_seconds). */
function gcSeconds(text) {
  const out = {};
  for (const m of text.matchAll(/^nodejs_gc_duration_seconds_sum\{kind="(\w+)"\} (\S+)$/gm)) out[m[1]] = Number(m[2]);
  return out;
}

/** Garbage collection between two scrapes, s per kind (major, minor, incremental); {} when one failed. */
function gcBetween(before, after) {
  const a = gcSeconds(before);
  const b = gcSeconds(after);
  return Object.fromEntries(['major', 'minor', 'incremental'].filter((k) => k in a && k in b).map((k) => [k, round(b[k] - a[k], 2)]));
}

export async function runHostile({ modelDir, images, only, rounds = 1, log = console.log, root = REPO }) {
  const model = JSON.parse(readFileSync(path.join(modelDir, 'model.json'), 'utf8')).name;
  const fixtures = await makeFixtures(model, images);
  const all = attacks(fixtures);
  const unknown = (only ?? []).filter((n) => n !== ALL_AT_ONCE && !all.some((a) => a.name === n));
  if (unknown.length > 0) throw new Error(`unknown attacks: ${unknown.join(', ')} (known: ${[...all.map((a) => a.name), ALL_AT_ONCE].join(', ')})`);
  const chosen = only ? all.filter((a) => only.includes(a.name)) : all;
  // The combination: of every attack when named, else of the ones chosen (when more than one).
  const combined = only?.includes(ALL_AT_ONCE) ? all : !only || chosen.length > 1 ? chosen : [];
  log(`  fixtures ${JSON.stringify(fixtures.sizes)}`);
  let stack = await startStack(modelDir, model, root);
  const { memory_limit_mb, baseline_mb, activation_mb, budget_mb } = stack.inference.line;
  const inferenceBudget = { memory_limit_mb, baseline_mb, activation_mb, budget_mb };
  log(`  inference memory: ${JSON.stringify(inferenceBudget)}`);
  const clients = () => {
    const gwPort = stack.gateway.line.http_port;
    return { gw: rawClient(`127.0.0.1:${stack.gateway.line.grpc_port}`), inf: rawClient(`127.0.0.1:${stack.inference.line.grpc_port}`), gwHttp: `http://127.0.0.1:${gwPort}`, gwPort };
  };
  let ctx = clients();

  // Ordinary uploads before any attack: their p95 (and the slowest health answer) is the
  // yardstick of this run.
  let observer = startObserver({ gwHttp: ctx.gwHttp, model, images });
  await sleep(3_000);
  observer.begin();
  await gatewayLoopMaxMs(ctx.gwHttp);
  await sleep(15_000);
  const before = await observer.end();
  before.health.gateway_loop_max_ms = await gatewayLoopMaxMs(ctx.gwHttp);
  const baseline = before.uploads.filter((o) => o.code === 'OK').map((o) => o.ms);
  const baselineP95 = percentile(baseline, 95);
  log(`  ordinary uploads before the attacks: ${baseline.length} OK, p95 ${round(baselineP95)} ms; health max ${before.health.max_ms} ms, gateway loop max ${before.health.gateway_loop_max_ms} ms (load ${loadAverage()[0]})`);

  const results = { model, inference_memory: inferenceBudget, baseline: { ok: baseline.length, p50_ms: round(percentile(baseline, 50)), p95_ms: round(baselineP95), health: before.health, split: ordinarySplit(before.uploads) }, attacks: [] };
  log(`  ordinary uploads' time before the attacks, slowest 5 % (mean ms): ${JSON.stringify(results.baseline.split?.tail)}`);
  const plan = [];
  for (let r = 0; r < rounds; r++) {
    for (const a of chosen) plan.push({ name: a.name, what: a.what, expect: a.expect, parts: [a] });
    if (combined.length > 1) plan.push({ name: ALL_AT_ONCE, what: `${combined.map((a) => a.name).join(', ')} at the same time`, expect: [...new Set(combined.flatMap((a) => a.expect))], parts: combined });
  }
  for (const step of plan) {
    if (!alive(stack.inference) || !alive(stack.gateway)) {
      log('  restarting the stack (a process died in the previous attack)');
      await observer.stop();
      await stack.gateway.stop(5_000);
      await stack.inference.stop(5_000);
      stack = await startStack(modelDir, model, root);
      ctx = clients();
      observer = startObserver({ gwHttp: ctx.gwHttp, model, images });
      await sleep(3_000);
    }
    await sleep(1_000);
    // An attacker connects when it attacks. A connection older than the server's maximum age is
    // being drained (GOAWAY), and streams opened on it meanwhile are refused at the HTTP/2 level
    // (REFUSED_STREAM, which grpc-js reports as UNAVAILABLE: retry on a new connection) — that is
    // the drain every long-lived client meets, not the attack's answer.
    ctx.gw.close();
    ctx.inf.close();
    ctx = clients();
    const watch = new MemoryWatch({ gateway: stack.gateway.pid, inference: stack.inference.pid }, 50).start();
    const admitted = watchAdmitted(stack.inference.line.metrics_port);
    observer.begin();
    const infMetrics = `http://127.0.0.1:${stack.inference.line.metrics_port}/metrics`;
    const scraped0 = { gateway: await metricsText(`${ctx.gwHttp}/metrics`), inference: await metricsText(infMetrics) };
    const loadavg = loadAverage();
    // CPU seconds of each process over the attack: the attacker (this process, both threads)
    // shares the machine's two cores with its targets.
    const cpu0 = { gateway: cpuSeconds(stack.gateway.pid), inference: cpuSeconds(stack.inference.pid), bench: process.cpuUsage() };
    const t0 = performance.now();
    const outcomes = await Promise.all(step.parts.flatMap((a) => a.run(ctx).map((p) => p.then((o) => ({ attack: a.name, ...o })))));
    const attackS = (performance.now() - t0) / 1000;
    // Ordinary uploads get at least 5 s of the attack's aftermath, so a short attack still has some.
    await sleep(Math.max(0, 5_000 - attackS * 1000));
    const cpu = {
      gateway: round(cpuSeconds(stack.gateway.pid) - cpu0.gateway, 2),
      inference: round(cpuSeconds(stack.inference.pid) - cpu0.inference, 2),
      bench: round((process.cpuUsage(cpu0.bench).user + process.cpuUsage(cpu0.bench).system) / 1e6, 2),
    };
    const window = await observer.end();
    const during = window.uploads;
    const scraped = { gateway: alive(stack.gateway) ? await metricsText(`${ctx.gwHttp}/metrics`) : '', inference: alive(stack.inference) ? await metricsText(infMetrics) : '' };
    const probe = { ...window.health, gateway_loop_max_ms: alive(stack.gateway) ? loopMaxMs(scraped.gateway) : Number.NaN };
    // Garbage collection over the attack and its aftermath: the pauses every request in that
    // process waits through.
    const gc = { gateway: gcBetween(scraped0.gateway, scraped.gateway), inference: gcBetween(scraped0.inference, scraped.inference) };
    const mem = watch.stop();
    const charged = admitted.stop();
    const ok = during.filter((o) => o.code === 'OK').map((o) => o.ms);
    const codes = countBy(outcomes.map((o) => o.code));
    const entry = {
      name: step.name,
      what: step.what,
      seconds: round(attackS, 1),
      loadavg,
      survived: { gateway: alive(stack.gateway), inference: alive(stack.inference) },
      peak_rss_mb: { gateway: round(mem.gateway.peakRssMb), inference: round(mem.inference.peakRssMb) },
      inference_memory: charged,
      rss_after_mb: { gateway: round(mem.gateway.lastRssMb), inference: round(mem.inference.lastRssMb) },
      cpu_s: cpu,
      gc_s: gc,
      codes,
      outcomes: outcomes.map((o) => ({ attack: o.attack, label: o.label, code: o.code, ms: round(o.ms), ...(o.details && !isTableCode(o.code) ? { details: o.details.slice(0, 120) } : {}) })),
      all_table_codes: outcomes.every((o) => TABLE_CODES_OK(o.code)),
      unexpected: outcomes.filter((o) => !step.expect.includes(o.code)).map((o) => `${o.attack}/${o.label}: ${o.code}`),
      ordinary: { sent: during.length, ok: ok.length, codes: countBy(during.map((o) => o.code)), p95_ms: round(percentile(ok, 95)), p95_ratio: round(percentile(ok, 95) / baselineP95, 2), split: ordinarySplit(during) },
      health: probe,
    };
    results.attacks.push(entry);
    log(
      `  ${step.name.padEnd(24)} ${String(entry.seconds).padStart(6)} s  RSS gw ${entry.peak_rss_mb.gateway} MB${entry.survived.gateway ? '' : ' DIED'}, inf ${entry.peak_rss_mb.inference} MB${entry.survived.inference ? '' : ' DIED'} (admitted max ${charged.admitted_max_mb}, external max ${charged.external_max_mb} MiB); ` +
        `codes ${JSON.stringify(codes)}; ordinary ${ok.length}/${during.length} OK p95 ×${entry.ordinary.p95_ratio}; CPU s gw ${cpu.gateway} inf ${cpu.inference} bench ${cpu.bench}; GC s gw ${JSON.stringify(gc.gateway)} inf ${JSON.stringify(gc.inference)}; health max ${probe.max_ms} ms (${probe.failures} failed), gateway loop max ${probe.gateway_loop_max_ms} ms; load ${loadavg[0]}`,
    );
    if (entry.ordinary.split) log(`    ordinary uploads' time, slowest 5 % (mean ms): ${JSON.stringify(entry.ordinary.split.tail)}`);
  }
  await observer.stop();
  ctx.gw.close();
  ctx.inf.close();
  await stack.gateway.stop(5_000);
  await stack.inference.stop(5_000);
  const worst = (k) => Math.max(...results.attacks.map((a) => a.peak_rss_mb[k]));
  results.targets = {
    no_process_died: results.attacks.every((a) => a.survived.gateway && a.survived.inference),
    peak_rss_le_512: { gateway_mb: worst('gateway'), inference_mb: worst('inference'), met: worst('gateway') <= 512 && worst('inference') <= 512 },
    every_request_a_table_code: results.attacks.every((a) => a.all_table_codes),
    ordinary_p95_within_2x: { worst_ratio: Math.max(...results.attacks.map((a) => a.ordinary.p95_ratio).filter(Number.isFinite)), met: results.attacks.every((a) => a.ordinary.p95_ratio <= 2) },
  };
  return results;
}

const fmt = (v) => (Number.isFinite(v) ? String(v) : '—');

/** The per-attack table of docs/benchmarks.md ("Hostile inputs"). */
export function hostileMarkdown(h) {
  const lines = [
    `Ordinary uploads before the attacks: ${h.baseline.ok} OK, p95 ${fmt(h.baseline.p95_ms)} ms; slowest /healthz ${fmt(h.baseline.health?.max_ms)} ms, gateway event-loop delay max ${fmt(h.baseline.health?.gateway_loop_max_ms)} ms.`,
    '',
    '| attack | s | gateway peak RSS MiB | inference peak RSS MiB | survived | codes | ordinary uploads: OK, p95 × before | slowest /healthz ms | gateway loop delay max ms | CPU s: gateway / inference / attacker | load |',
    '|---|---|---|---|---|---|---|---|---|---|---|',
  ];
  for (const a of h.attacks) {
    const died = [a.survived.gateway ? '' : 'gateway DIED', a.survived.inference ? '' : 'inference DIED'].filter(Boolean).join(', ');
    lines.push(
      `| ${a.name} | ${a.seconds} | ${fmt(a.peak_rss_mb.gateway)} | ${fmt(a.peak_rss_mb.inference)} | ${died || 'both'} | ${Object.entries(a.codes).map(([k, v]) => `${k} ${v}`).join(', ')} | ${a.ordinary.ok}/${a.ordinary.sent}, ×${fmt(a.ordinary.p95_ratio)} | ${fmt(a.health.max_ms)} | ${fmt(a.health.gateway_loop_max_ms)} | ${a.cpu_s ? `${fmt(a.cpu_s.gateway)} / ${fmt(a.cpu_s.inference)} / ${fmt(a.cpu_s.bench)}` : '—'} | ${a.loadavg[0]} |`,
    );
  }
  return lines.join('\n');
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const a = args(process.argv.slice(2));
  const modelDir = a.model ? path.resolve(REPO, a.model) : defaultModelDir();
  const started = new Date().toISOString();
  const command = `node bench/hostile.mjs ${process.argv.slice(2).join(' ')}`.trim();
  console.log(`${command}\n  ${JSON.stringify(machine())}\n  load average ${loadAverage().join(' ')}`);
  const trees = treesOf(a.before);
  const order = a.before ? turnOrder(Object.keys(trees), Number(a.turns ?? 2)) : ['after'];
  const runs = order.map((tree, i) => ({ tree, n: order.slice(0, i + 1).filter((t) => t === tree).length }));
  for (const { tree, n } of runs) {
    if (a.before) console.log(`\n${tree} ${n}: ${trees[tree]}`);
    const results = await runHostile({ modelDir, images: loadImages(a.images), only: a.attacks?.split(','), rounds: Number(a.rounds ?? 1), root: trees[tree] });
    const out = { command, ...(a.before ? { tree, root: trees[tree] } : {}), started_at: started, finished_at: new Date().toISOString(), machine: machine(), loadavg_end: loadAverage(), ...results };
    const given = a.out && a.before ? a.out.replace(/(\.json)?$/, `-${tree}-${n}$1`) : a.out;
    const file = given ?? path.join(REPO, 'bench', 'results', `hostile-${started.replace(/[:.]/g, '-').slice(0, 19)}${a.before ? `-${tree}-${n}` : ''}.json`);
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(file, JSON.stringify(out, null, 1));
    console.log(`\n${a.before ? `[${tree} ${n}] ` : ''}${hostileMarkdown(results)}\n\ntargets ${JSON.stringify(results.targets)}\nresults: ${path.relative(REPO, file)}`);
  }
}
