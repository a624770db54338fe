import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRequire } from 'node:module';
import * as grpc from '@grpc/grpc-js';
import { GRPC_FRAME_HEADER_BYTES, preFramed, preFramingApplied, reuseReceivedFrame } from './grpc-preframed.js';

const identity = (b: Buffer): Buffer => b;
let server: grpc.Server;
let client: grpc.Client;
const received: Buffer[] = [];

beforeAll(async () => {
  server = new grpc.Server();
  const echo: grpc.ServiceDefinition = {
    Echo: { path: '/test.Echo/Echo', requestStream: false, responseStream: false, requestSerialize: identity, requestDeserialize: identity, responseSerialize: identity, responseDeserialize: identity },
  };
  server.addService(echo, {
    Echo: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => {
      received.push(Buffer.from(call.request));
      cb(null, Buffer.from('ok'));
    },
  });
  const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));
  client = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
});
afterAll(() => {
  client?.close();
  server?.forceShutdown();
});

const send = (message: Buffer): Promise<void> =>
  new Promise((resolve, reject) => client.makeUnaryRequest('/test.Echo/Echo', identity, identity, message, new grpc.Metadata(), {}, (err) => (err ? reject(err) : resolve())));

describe('pre-framed messages', () => {
  it('grpc-js still has the writer the hook replaces (fails when an upgrade moves it)', () => {
    expect(preFramingApplied).toBe(true);
    const require = createRequire(import.meta.url);
    const { CompressionFilter } = require('@grpc/grpc-js/build/src/compression-filter.js') as { CompressionFilter: new (o: object, s: object) => { sendCompression: { writeMessage(m: Buffer, c: boolean): Promise<Buffer> } } };
    const writer = new CompressionFilter({}, {}).sendCompression;
    const memory = Buffer.alloc(GRPC_FRAME_HEADER_BYTES + 3);
    const message = preFramed(memory);
    message.write('abc');
    // The registered message is sent from its own memory, framed in place.
    return writer.writeMessage(message, false).then((framed) => {
      expect(framed).toBe(memory);
      expect([...memory]).toEqual([0, 0, 0, 0, 3, 0x61, 0x62, 0x63]);
    });
  });

  it('arrive intact, as do ordinary messages beside them', async () => {
    const memory = Buffer.allocUnsafeSlow(GRPC_FRAME_HEADER_BYTES + 200_000);
    const message = preFramed(memory);
    for (let i = 0; i < message.length; i++) message[i] = i % 251;
    await send(message);
    await send(Buffer.from('plain'));
    expect(received[0]!.equals(message)).toBe(true);
    expect(received[1]!.toString()).toBe('plain');
  });

  it('reuses a received frame only when its own header is in front of it', () => {
    const framed = Buffer.from([0, 0, 0, 0, 2, 7, 8]);
    expect(reuseReceivedFrame(framed.subarray(5))).toBe(true);
    expect(reuseReceivedFrame(Buffer.from([0, 0, 0, 0, 9, 7, 8]).subarray(5))).toBe(false);
    expect(reuseReceivedFrame(Buffer.from([1, 2]))).toBe(false);
  });
});
