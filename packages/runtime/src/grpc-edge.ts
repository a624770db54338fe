// The gRPC edge of every segserve server (issue 11, "authenticate and bound before
// deserialising"), as one grpc-js server interceptor:
//
// 1. The API key is checked on the call's metadata. A call that fails is answered UNAUTHENTICATED
//    before a single byte of its message is read (grpc-js reads a request only once the handler
//    asks for it, and the handler never sees this call).
// 2. Each method has its own receive limit, applied at the message's 5-byte length prefix: a
//    message over it is TOO_LARGE before it is buffered. The bytes that will be buffered are
//    charged to the process's memory budget at the same moment (`admit`); the charge ends with
//    the call.
// 3. The request arrives as raw bytes (the service definition's deserializer is replaced by the
//    identity), is scanned with a wire rule (wire-scan.ts: repeated fields counted, nothing
//    allocated), and only then decoded — or handed to the handler as bytes (`raw`).
// 4. Every status leaves with the error table's code in the `segserve-error-code` trailer:
//    statuses grpc-js writes itself (over-size, undecodable, bad compression, deadline) are
//    re-issued through the table too.
//
// Steps 2 and 4 reach into two fields of grpc-js's per-call object (the message decoder and its
// sendStatus), as http2-windows.ts does for the server's windows; `edgeHooksAvailable` tells
// whether this grpc-js still has them, and grpc-edge.test.ts fails on an upgrade that renames
// them. Without them the limits are checked after buffering and grpc-js's own statuses stay.
import * as grpc from '@grpc/grpc-js';
import http2 from 'node:http2';
import { ERROR_CODE_METADATA_KEY, SegserveError, toGrpcServerError } from '@segserve/proto';
import { reuseReceivedFrame } from './grpc-preframed.js';
import { scanMessage, WireScanError, type MessageRule } from './wire-scan.js';

/** Received messages at least this large are kept sendable as they came (grpc-preframed.ts). */
const REUSE_FRAME_MIN_BYTES = 64 * 1024;

export interface EdgeMethod {
  /** The largest request message, bytes; asked per call (a model loaded later may change it). */
  readonly maxBytes: () => number;
  /** Checked on the raw request before it is decoded (large or repeated-field messages). */
  readonly rule?: () => MessageRule;
  /** The handler gets the raw request bytes, and answers with raw response bytes. */
  readonly raw?: boolean;
  /** Charge the message's bytes to the memory budget at the door. */
  readonly charged?: boolean;
}

/** What `admit` returns: released exactly when the call ends. */
export interface Releasable {
  release(): void;
}

/** Who makes a call, as far as the edge knows before its message: for the charge's client. */
export interface EdgeCaller {
  /** The call's metadata (already authorised). */
  readonly metadata: grpc.Metadata;
  /** grpc-js's `getPeer()`: address and port. */
  readonly peer: string;
}

export interface EdgeGuardOptions {
  /**
   * Whether a call may proceed, from its path and metadata; asked before its message is read.
   * Absent: every call may.
   */
  readonly authorize?: (path: string, metadata: grpc.Metadata) => boolean;
  /** Receive limit of methods without their own (health, metadata, reflection), bytes. */
  readonly defaultMaxBytes: number;
  /**
   * Takes a place for a call to a charged method as soon as its headers arrive, before any byte
   * of its message, or throws a SegserveError (OVERLOADED): the excess of a burst is refused
   * before its uploads are on the wire. What it returns is handed to `admit` at the length
   * prefix (which then owns it), or released when the call ends before.
   */
  readonly arrive?: (path: string, caller: EdgeCaller) => Releasable;
  /**
   * Charges `bytes` for a request to `path` (with the call's place when `arrive` took one), or
   * throws a SegserveError (TOO_LARGE, OVERLOADED).
   */
  readonly admit?: (path: string, bytes: number, caller: EdgeCaller, place?: Releasable) => Releasable;
  /** Hears every call the guard answers itself (metrics, logs). */
  readonly onRefusal?: (path: string, err: SegserveError) => void;
}

/** grpc-js's per-call object, as far as the guard touches it. */
interface BaseCall {
  decoder: { write(data: Buffer): Buffer[] };
  maxReceiveMessageSize: number;
  sendStatus(status: grpc.StatusObject | PartialStatus): void;
  /** The HTTP/2 stream; used, when present, to stop a refused upload (RST_STREAM NO_ERROR). */
  stream?: { close?(code?: number): void; closed?: boolean; destroyed?: boolean };
}

type PartialStatus = { code: grpc.status; details: string; metadata?: grpc.Metadata | null };

function isBaseCall(call: unknown): call is BaseCall {
  const c = call as Partial<BaseCall> | null;
  return typeof c === 'object' && c !== null && typeof c.decoder?.write === 'function' && typeof c.maxReceiveMessageSize === 'number' && typeof c.sendStatus === 'function';
}

const UNAUTHENTICATED = (): SegserveError => new SegserveError('UNAUTHENTICATED', 'a valid API key is required (authorization: Bearer <key>)');

/** A status from the table, as grpc-js sends it. */
function tableStatus(err: SegserveError): PartialStatus {
  const e = toGrpcServerError(err);
  return { code: e.code, details: e.details, metadata: e.metadata };
}

/** Statuses grpc-js writes on its own, as table errors; undefined for everything else. */
export function frameworkError(status: PartialStatus): SegserveError | undefined {
  const details = status.details ?? '';
  switch (status.code) {
    case grpc.status.RESOURCE_EXHAUSTED:
      if (/^Sent message/i.test(details)) return new SegserveError('INTERNAL', 'internal error', { cause: new Error(details) });
      return new SegserveError('TOO_LARGE', 'the request message is larger than this method accepts', { cause: new Error(details) });
    case grpc.status.INTERNAL:
      if (/deserializ/i.test(details)) return new SegserveError('INVALID_INPUT', 'the request is not a valid protobuf message of this method', { cause: new Error(details) });
      if (/decompress/i.test(details)) return new SegserveError('INVALID_INPUT', 'the request message could not be decompressed', { cause: new Error(details) });
      if (/grpc-timeout/i.test(details)) return new SegserveError('INVALID_INPUT', 'the grpc-timeout header is not valid', { cause: new Error(details) });
      return undefined;
    case grpc.status.UNIMPLEMENTED:
      if (/encoding|request message/i.test(details)) return new SegserveError('INVALID_INPUT', details);
      return undefined;
    case grpc.status.DEADLINE_EXCEEDED:
      return new SegserveError('DEADLINE', 'deadline exceeded');
    default:
      return undefined;
  }
}

const hasTrailer = (status: PartialStatus): boolean => (status.metadata?.get(ERROR_CODE_METADATA_KEY).length ?? 0) > 0;

/**
 * gRPC message framing (1 flag byte, 4 length bytes, the message) with a limit and a charge at
 * the length prefix, and one allocation of the message's exact size.
 */
class GuardedDecoder {
  #head = Buffer.alloc(5);
  #headFill = 0;
  #message: Buffer | undefined;
  #fill = 0;

  constructor(
    private readonly onLength: (bytes: number) => void,
  ) {}

  write(data: Buffer): Buffer[] {
    const out: Buffer[] = [];
    let pos = 0;
    while (pos < data.length) {
      if (this.#message === undefined) {
        const n = Math.min(5 - this.#headFill, data.length - pos);
        data.copy(this.#head, this.#headFill, pos, pos + n);
        this.#headFill += n;
        pos += n;
        if (this.#headFill < 5) break;
        const length = this.#head.readUInt32BE(1);
        this.onLength(length); // throws to refuse
        // Its own memory (never a slice of Node's pool), so it can be sent on as it came.
        this.#message = Buffer.allocUnsafeSlow(5 + length);
        this.#head.copy(this.#message, 0);
        this.#fill = 5;
      }
      const n = Math.min(this.#message.length - this.#fill, data.length - pos);
      data.copy(this.#message, this.#fill, pos, pos + n);
      this.#fill += n;
      pos += n;
      if (this.#fill === this.#message.length) {
        out.push(this.#message);
        this.#message = undefined;
        this.#headFill = 0;
      }
    }
    return out;
  }
}

interface MethodState extends EdgeMethod {
  readonly decode: (bytes: Buffer) => unknown;
}

const identity = (b: Buffer): Buffer => b;

export class GrpcEdgeGuard {
  readonly #options: EdgeGuardOptions;
  readonly #methods = new Map<string, MethodState>();
  readonly #charges = new WeakMap<grpc.Metadata, Releasable>();
  /** Whether the last call the guard saw had grpc-js's per-call hooks (see the file comment). */
  hooksApplied = false;

  constructor(options: EdgeGuardOptions) {
    this.#options = options;
  }

  /**
   * `definition` with its guarded methods' requests delivered raw to the guard (which scans and
   * decodes them); `raw` methods also take raw bytes as their response.
   */
  service<D extends grpc.ServiceDefinition>(definition: D, methods: Readonly<Partial<Record<keyof D & string, EdgeMethod>>>): D {
    const out: Record<string, grpc.MethodDefinition<unknown, unknown>> = {};
    for (const [name, m] of Object.entries(definition) as [string, grpc.MethodDefinition<unknown, unknown>][]) {
      const rules = methods[name as keyof D & string];
      if (!rules) {
        out[name] = m;
        continue;
      }
      this.#methods.set(m.path, { ...rules, decode: rules.raw ? identity : (b: Buffer) => m.requestDeserialize(b) });
      out[name] = { ...m, requestDeserialize: identity, ...(rules.raw ? { responseSerialize: identity as (v: unknown) => Buffer } : {}) };
    }
    return out as D;
  }

  /** The largest receive limit of any method (for the server's own option, a backstop). */
  maxReceiveBytes(): number {
    let max = this.#options.defaultMaxBytes;
    for (const m of this.#methods.values()) max = Math.max(max, m.maxBytes());
    return max;
  }

  /** The door charge of a call, by its metadata (the handler's `call.metadata`), if any. */
  chargeOf(metadata: grpc.Metadata): Releasable | undefined {
    return this.#charges.get(metadata);
  }

  readonly interceptor: grpc.ServerInterceptor = (descriptor, next) => this.#intercept(descriptor.path, next);

  #intercept(path: string, base: grpc.ServerInterceptingCallInterface): grpc.ServerInterceptingCall {
    const options = this.#options;
    const method = this.#methods.get(path);
    const limit = method?.maxBytes() ?? options.defaultMaxBytes;
    let charge: Releasable | undefined;
    /** The place `arrive` took, until `admit` takes it over. */
    let place: Releasable | undefined;
    let refusal: SegserveError | undefined;
    let failed = false;
    /** The whole request message has arrived (nothing more for the client to send). */
    let received = false;
    let metadata: grpc.Metadata | undefined;
    const release = (): void => {
      charge?.release();
      charge = undefined;
      place?.release();
      place = undefined;
    };
    const refuse = (err: SegserveError): SegserveError => {
      refusal ??= err;
      options.onRefusal?.(path, err);
      return err;
    };
    const checkSize = (bytes: number): void => {
      if (bytes > limit) throw refuse(new SegserveError('TOO_LARGE', `the request message has ${bytes} bytes; ${path} accepts at most ${limit}`));
      if (method?.charged && options.admit) {
        try {
          charge = options.admit(path, bytes, { metadata: metadata ?? new grpc.Metadata(), peer: base.getPeer() }, place);
          place = undefined;
        } catch (err) {
          throw refuse(err instanceof SegserveError ? err : new SegserveError('INTERNAL', 'internal error', { cause: err }));
        }
        if (metadata) this.#charges.set(metadata, charge);
      }
    };

    const hooked = isBaseCall(base);
    this.hooksApplied = hooked;
    if (hooked) {
      base.maxReceiveMessageSize = limit; // decompressed size, for compressed messages
      base.decoder = new GuardedDecoder(checkSize);
      const send = base.sendStatus.bind(base);
      base.sendStatus = (status) => {
        release();
        const err = status.code === grpc.status.OK || hasTrailer(status) ? undefined : (refusal ?? frameworkError(status));
        send(err ? tableStatus(err) : status);
        // A refused upload still on its way: after the status, RST_STREAM NO_ERROR tells the
        // client to stop sending (HTTP/2 transport of gRPC), so its bytes are neither sent nor read.
        if (status.code !== grpc.status.OK && !received && base.stream?.close && !base.stream.closed && !base.stream.destroyed) base.stream.close(http2.constants.NGHTTP2_NO_ERROR);
      };
    }

    const fail = (err: SegserveError): void => {
      failed = true;
      refuse(err);
      call.sendStatus(tableStatus(err));
    };

    const call: grpc.ServerInterceptingCall = new grpc.ServerInterceptingCall(base, {
      start: (nextStart) => {
        nextStart({
          onReceiveMetadata: (md, nextMd) => {
            if (options.authorize && !options.authorize(path, md)) return fail(UNAUTHENTICATED());
            if (method?.charged && options.arrive) {
              try {
                place = options.arrive(path, { metadata: md, peer: base.getPeer() });
              } catch (err) {
                return fail(err instanceof SegserveError ? err : new SegserveError('INTERNAL', 'internal error', { cause: err }));
              }
            }
            metadata = md;
            nextMd(md);
          },
          onReceiveMessage: (message: Buffer, nextMessage) => {
            received = true;
            if (failed) return;
            try {
              // Without grpc-js's hooks the limit and the charge come after buffering.
              if (!hooked) checkSize(message.length);
              // A large request forwarded unchanged (the gateway's ModelInfer) leaves from the
              // memory it arrived in: its frame header is still in front of it.
              else if (method?.raw && message.length >= REUSE_FRAME_MIN_BYTES) reuseReceivedFrame(message);
              nextMessage(method ? decodeGuarded(path, method, message) : message);
            } catch (err) {
              fail(err instanceof SegserveError ? err : new SegserveError('INTERNAL', 'internal error', { cause: err }));
            }
          },
          onReceiveHalfClose: (nextHalfClose) => {
            if (!failed) nextHalfClose();
          },
          onCancel: release,
        });
      },
      sendStatus: (status, nextStatus) => {
        release();
        nextStatus(status);
      },
    });
    return call;
  }
}

/** Scans `bytes` with the method's rule, then decodes them (or keeps them raw). */
function decodeGuarded(path: string, method: MethodState, bytes: Buffer): unknown {
  const rule = method.rule?.();
  if (rule) {
    try {
      scanMessage(bytes, rule);
    } catch (err) {
      if (err instanceof WireScanError) throw new SegserveError('INVALID_INPUT', err.problem === 'malformed' ? `the request is not a valid ${rule.name}: ${err.message}` : err.message, { cause: err });
      throw err;
    }
  }
  try {
    return method.decode(bytes);
  } catch (err) {
    throw new SegserveError('INVALID_INPUT', `the request is not a valid protobuf message for ${path}`, { cause: err });
  }
}

/** Whether this grpc-js gives the guard its per-call hooks (checked by a test on every upgrade). */
export function edgeHooksAvailable(call: unknown): boolean {
  return isBaseCall(call);
}
