import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as grpc from '@grpc/grpc-js';
import { ERROR_CODE_METADATA_KEY, loadProtos, SegserveError, toGrpcServerError } from '@segserve/proto';
import { edgeHooksAvailable, frameworkError, GrpcEdgeGuard } from './grpc-edge.js';
import { MemoryLedger } from './memory-ledger.js';
import { GENERIC_OIP_BOUNDS, modelInferRequestRule, SEGMENT_REQUEST_RULE } from './request-rules.js';

const KEY = 'edge-test-key-0123456789';
const protos = loadProtos();
const ledger = new MemoryLedger({ capacityBytes: 8 << 20, maxWaiting: 0 });
const charged: number[] = [];
const refusals: string[] = [];
const handled: string[] = [];
let sawHooks = false;
let server: grpc.Server;
let client: grpc.Client;

/** Places for calls to charged methods (`arrive`), taken when their headers arrive. */
const PLACES = 4;
let places = PLACES;
const arrivals: string[] = [];

const guard = new GrpcEdgeGuard({
  authorize: (path, md) => path.startsWith('/grpc.health') || md.get('authorization')[0] === `Bearer ${KEY}`,
  defaultMaxBytes: 64 * 1024,
  arrive: (path) => {
    if (places <= 0) throw new SegserveError('OVERLOADED', 'no place left');
    places--;
    arrivals.push(path);
    let held = true;
    return { release: () => void (held && ((held = false), places++)) };
  },
  // Takes over the call's place with its bytes.
  admit: (_path, bytes, _caller, place) => {
    charged.push(bytes);
    const c = ledger.tryCharge(bytes);
    return {
      release: () => {
        c.release();
        place?.release();
      },
    };
  },
  onRefusal: (path, err) => refusals.push(`${path} ${err.code}`),
});

beforeAll(async () => {
  server = new grpc.Server({ interceptors: [(d, call) => ((sawHooks = edgeHooksAvailable(call)), guard.interceptor(d, call))] });
  server.addService(
    guard.service(protos.predictV2.inference.GRPCInferenceService.service, {
      ModelInfer: { maxBytes: () => 4 << 20, rule: () => modelInferRequestRule(GENERIC_OIP_BOUNDS), charged: true },
    }),
    {
      ModelInfer: (call: grpc.ServerUnaryCall<{ model_name: string; inputs: unknown[] }, unknown>, cb: grpc.sendUnaryData<unknown>) => {
        handled.push(`ModelInfer ${call.request.model_name} ${call.request.inputs.length}`);
        if (call.request.model_name === 'fail') return cb(toGrpcServerError(new SegserveError('MODEL_NOT_FOUND', 'no such model')));
        cb(null, { model_name: call.request.model_name, held: ledger.snapshot.held });
      },
    },
  );
  server.addService(guard.service(protos.segmenter.segserve.v1.Segmenter.service, { Segment: { maxBytes: () => 1 << 20, rule: () => SEGMENT_REQUEST_RULE, charged: true, raw: true } }), {
    Segment: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => {
      handled.push(`Segment raw ${Buffer.isBuffer(call.request)} ${call.request.length}`);
      cb(null, Buffer.concat([Buffer.from([0x0a, 0x02]), Buffer.from('ok')]));
    },
  });
  server.addService(protos.health.grpc.health.v1.Health.service, { Check: (_c: unknown, cb: grpc.sendUnaryData<unknown>) => cb(null, { status: 'SERVING' }), Watch: () => undefined });
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));
  client = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), { 'grpc.max_send_message_length': 64 << 20, 'grpc.max_receive_message_length': 64 << 20 });
});

afterAll(() => {
  client?.close();
  server?.forceShutdown();
});

// Wire bytes by hand.
const ld = (field: number, bytes: Buffer): Buffer => {
  const len: number[] = [];
  let n = bytes.length;
  do {
    len.push((n & 0x7f) | (n >= 0x80 ? 0x80 : 0));
    n = Math.floor(n / 128);
  } while (n > 0);
  return Buffer.concat([Buffer.from([(field << 3) | 2, ...len]), bytes]);
};
const str = (field: number, s: string): Buffer => ld(field, Buffer.from(s));

interface Outcome {
  readonly status: grpc.status;
  readonly code: string | undefined;
  readonly details: string;
  readonly response?: Buffer;
}

function call(method: string, bytes: Buffer, key?: string): Promise<Outcome> {
  const md = new grpc.Metadata();
  if (key) md.set('authorization', `Bearer ${key}`);
  return new Promise((resolve) => {
    client.makeUnaryRequest(method, (b: Buffer) => b, (b: Buffer) => b, bytes, md, { deadline: Date.now() + 20_000 }, (err, response) => {
      if (err) resolve({ status: err.code, code: err.metadata?.get(ERROR_CODE_METADATA_KEY)[0] as string | undefined, details: err.details });
      else resolve({ status: grpc.status.OK, code: undefined, details: '', ...(response ? { response } : {}) });
    });
  });
}

const MODEL_INFER = '/inference.GRPCInferenceService/ModelInfer';
const SEGMENT = '/segserve.v1.Segmenter/Segment';
const millionInputs = Buffer.concat([str(1, 'm'), Buffer.alloc(2_000_000, Buffer.from([0x2a, 0x00]))]);

describe('GrpcEdgeGuard', () => {
  it('has grpc-js per-call hooks to work with (fails when an upgrade renames them)', async () => {
    await call(MODEL_INFER, str(1, 'm'), KEY);
    expect(sawHooks).toBe(true);
    expect(guard.hooksApplied).toBe(true);
  });

  it('answers a 2 MB message without a key UNAUTHENTICATED before reading it', async () => {
    charged.length = 0;
    handled.length = 0;
    const r = await call(MODEL_INFER, millionInputs);
    expect(r).toMatchObject({ status: grpc.status.UNAUTHENTICATED, code: 'UNAUTHENTICATED' });
    // The length prefix was never read: nothing was charged, the handler never ran.
    expect(charged).toEqual([]);
    expect(handled).toEqual([]);
  });

  it('counts the million empty inputs before decoding them: INVALID_INPUT', async () => {
    handled.length = 0;
    const r = await call(MODEL_INFER, millionInputs, KEY);
    expect(r).toMatchObject({ status: grpc.status.INVALID_ARGUMENT, code: 'INVALID_INPUT' });
    expect(r.details).toMatch(/inputs has more than 16 values/);
    expect(handled).toEqual([]);
  });

  it('decodes a message within bounds for the handler, and releases its charge when answered', async () => {
    handled.length = 0;
    const r = await call(MODEL_INFER, Buffer.concat([str(1, 'good'), ld(5, str(1, 'input'))]), KEY);
    expect(r.status).toBe(grpc.status.OK);
    expect(handled).toEqual(['ModelInfer good 1']);
    expect(ledger.snapshot.held).toBe(0);
  });

  it('refuses a message over the method limit TOO_LARGE at its length prefix', async () => {
    charged.length = 0;
    const r = await call(MODEL_INFER, Buffer.concat([str(1, 'm'), ld(7, Buffer.alloc(5 << 20))]), KEY);
    expect(r).toMatchObject({ status: grpc.status.RESOURCE_EXHAUSTED, code: 'TOO_LARGE' });
    expect(charged).toEqual([]);
  });

  it('refuses OVERLOADED when the budget cannot take the message now, and recovers', async () => {
    const hog = ledger.tryCharge(3 << 20); // with the message, over the large charges' half
    const r = await call(MODEL_INFER, Buffer.concat([str(1, 'm'), ld(7, Buffer.alloc(2 << 20))]), KEY);
    hog.release();
    expect(r).toMatchObject({ status: grpc.status.RESOURCE_EXHAUSTED, code: 'OVERLOADED' });
    expect((await call(MODEL_INFER, Buffer.concat([str(1, 'm'), ld(7, Buffer.alloc(2 << 20))]), KEY)).status).toBe(grpc.status.OK);
    expect(ledger.snapshot.held).toBe(0);
  });

  it('refuses OVERLOADED when no place is left, on the call’s headers, before its message is read', async () => {
    charged.length = 0;
    handled.length = 0;
    const taken = places;
    places = 0;
    const r = await call(MODEL_INFER, Buffer.concat([str(1, 'm'), ld(7, Buffer.alloc(2 << 20))]), KEY);
    places = taken;
    expect(r).toMatchObject({ status: grpc.status.RESOURCE_EXHAUSTED, code: 'OVERLOADED' });
    expect(charged).toEqual([]);
    expect(handled).toEqual([]);
  });

  it('takes a place per charged call when it arrives and gives every one back when it ends', async () => {
    arrivals.length = 0;
    const outcomes = await Promise.all([
      call(MODEL_INFER, str(1, 'good'), KEY),
      call(MODEL_INFER, Buffer.concat([str(1, 'm'), ld(7, Buffer.alloc(5 << 20))]), KEY), // TOO_LARGE at the prefix
      call(MODEL_INFER, str(1, 'fail'), KEY),
      call('/grpc.health.v1.Health/Check', str(1, '')), // not charged: no place
    ]);
    expect(outcomes.map((o) => o.code ?? 'OK')).toEqual(['OK', 'TOO_LARGE', 'MODEL_NOT_FOUND', 'OK']);
    expect(arrivals).toEqual([MODEL_INFER, MODEL_INFER, MODEL_INFER]);
    expect(places).toBe(PLACES);
    expect(ledger.snapshot.held).toBe(0);
  });

  it('answers an undecodable message INVALID_INPUT, in the table', async () => {
    const r = await call(MODEL_INFER, Buffer.concat([str(1, 'fac'), Buffer.from([0x0f, 0x00])]), KEY);
    expect(r).toMatchObject({ status: grpc.status.INVALID_ARGUMENT, code: 'INVALID_INPUT' });
    expect(r.details).toMatch(/not a valid ModelInferRequest/);
  });

  it('keeps the handler’s own table errors as they are', async () => {
    expect(await call(MODEL_INFER, str(1, 'fail'), KEY)).toMatchObject({ status: grpc.status.NOT_FOUND, code: 'MODEL_NOT_FOUND' });
  });

  it('hands raw methods their bytes and sends their bytes back', async () => {
    handled.length = 0;
    const r = await call(SEGMENT, Buffer.concat([str(1, 'm'), ld(3, Buffer.alloc(1000))]), KEY);
    expect(r.status).toBe(grpc.status.OK);
    expect(r.response?.subarray(2).toString()).toBe('ok');
    expect(handled).toEqual(['Segment raw true 1006']);
  });

  it('applies the default limit to methods without their own, and leaves open methods open', async () => {
    const check = (bytes: Buffer): Promise<Outcome> => call('/grpc.health.v1.Health/Check', bytes);
    expect((await check(str(1, ''))).status).toBe(grpc.status.OK);
    expect(await check(str(1, 'x'.repeat(100_000)))).toMatchObject({ status: grpc.status.RESOURCE_EXHAUSTED, code: 'TOO_LARGE' });
  });

  it('told every refusal it answered itself', () => {
    expect(refusals).toEqual(expect.arrayContaining([`${MODEL_INFER} UNAUTHENTICATED`, `${MODEL_INFER} INVALID_INPUT`, `${MODEL_INFER} TOO_LARGE`, `${MODEL_INFER} OVERLOADED`]));
  });
});

describe('frameworkError', () => {
  it.each([
    [grpc.status.RESOURCE_EXHAUSTED, 'Received message larger than max (5 vs 4)', 'TOO_LARGE'],
    [grpc.status.RESOURCE_EXHAUSTED, 'Sent message larger than max (5 vs 4)', 'INTERNAL'],
    [grpc.status.INTERNAL, 'Error deserializing request', 'INVALID_INPUT'],
    [grpc.status.INTERNAL, 'Failed to decompress message', 'INVALID_INPUT'],
    [grpc.status.INTERNAL, 'Invalid grpc-timeout value "x"', 'INVALID_INPUT'],
    [grpc.status.UNIMPLEMENTED, 'Received message compressed with unsupported encoding "br"', 'INVALID_INPUT'],
    [grpc.status.DEADLINE_EXCEEDED, 'Deadline exceeded', 'DEADLINE'],
    [grpc.status.NOT_FOUND, "unknown service 'x'", undefined],
    [grpc.status.UNKNOWN, 'Unknown error', undefined],
  ] as const)('%s %s → %s', (code, details, expected) => {
    expect(frameworkError({ code, details })?.code).toBe(expected);
  });
});
