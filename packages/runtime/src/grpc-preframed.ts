// Sending a large request without grpc-js copying it. grpc-js frames every outgoing message
// (1 flag byte, 4 length bytes, the message) into a freshly allocated buffer: for a 26 MB upload
// that is a 26 MB copy into memory the process has never touched, and on a virtual machine the
// page faults of that first touch cost 60–800 ms of the event loop (bench/hostile.mjs, profiled).
// A caller that already has the message in memory with 5 free bytes in front of it (the
// gateway's upload collector, the edge guard's receive buffer) writes the frame header there and
// registers the framed bytes here; grpc-js's uncompressed writer then returns them as they are.
//
// This replaces one method of a grpc-js class that the package does not export (the identity
// "compression" handler's writeMessage), found through the compression filter that uses it, as
// http2-windows.ts and grpc-edge.ts reach into grpc-js. Unregistered messages take grpc-js's own
// path; when a grpc-js release moves the method, `preFramingApplied` is false, messages are
// copied again, and grpc-preframed.test.ts fails on the upgrade.
import { createRequire } from 'node:module';

const FRAME_HEADER = 5;
const framedOf = new WeakMap<Buffer, Buffer>();

interface IdentityHandlerPrototype {
  writeMessage(message: Buffer, compress: boolean): Promise<Buffer>;
}

function install(): boolean {
  try {
    const require = createRequire(import.meta.url);
    const filter = require('@grpc/grpc-js/build/src/compression-filter.js') as { CompressionFilter?: new (options: object, shared: object) => { sendCompression?: object } };
    const sample = filter.CompressionFilter ? new filter.CompressionFilter({}, {}).sendCompression : undefined;
    const proto = sample ? (Object.getPrototypeOf(sample) as Partial<IdentityHandlerPrototype>) : undefined;
    if (!proto || typeof proto.writeMessage !== 'function') return false;
    if (Object.prototype.hasOwnProperty.call(proto, 'segservePreframed')) return true; // a second copy of this module
    const original = proto.writeMessage;
    proto.writeMessage = function writeMessage(this: unknown, message: Buffer, compress: boolean): Promise<Buffer> {
      const framed = framedOf.get(message);
      return framed ? Promise.resolve(framed) : original.call(this, message, compress);
    };
    Object.defineProperty(proto, 'segservePreframed', { value: true });
    return true;
  } catch {
    return false;
  }
}

/** Whether grpc-js sends registered messages without copying them (see the file comment). */
export const preFramingApplied: boolean = install();

/** Room a caller keeps in front of a message for its frame header. */
export const GRPC_FRAME_HEADER_BYTES = FRAME_HEADER;

/**
 * `memory` is [5 free bytes][message]: writes the frame header into the free bytes and returns
 * the message, which grpc-js then sends from this memory. `memory` must not be shared (no slice
 * of Node's buffer pool) and must not change until the call has ended.
 */
export function preFramed(memory: Buffer): Buffer {
  const message = memory.subarray(FRAME_HEADER);
  memory[0] = 0; // not compressed
  memory.writeUInt32BE(message.length, 1);
  framedOf.set(message, memory);
  return message;
}

/**
 * A received message that still has its own frame header right in front of it (the edge guard's
 * receive buffer): registers it, unchanged, to be sent on as it came. Returns false when the bytes
 * in front are not its frame header.
 */
export function reuseReceivedFrame(message: Buffer): boolean {
  if (message.byteOffset < FRAME_HEADER) return false;
  const framed = Buffer.from(message.buffer, message.byteOffset - FRAME_HEADER, message.length + FRAME_HEADER);
  if (framed[0] !== 0 || framed.readUInt32BE(1) !== message.length) return false;
  framedOf.set(message, framed);
  return true;
}
