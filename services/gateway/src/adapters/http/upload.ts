// Reads the `image` part of a multipart upload into ONE buffer, sized from Content-Length when
// the client sent it, so the bytes are copied once from the socket and then handed to the gRPC
// call. Every limit is explicit; reaching one is an error (413), never a silently cut image:
// busboy marks a file that hit `fileSize` as `truncated`, which is checked here.
import type { FastifyRequest } from 'fastify';
import { finished } from 'node:stream/promises';
import { SegserveError } from '@segserve/proto';
import { GRPC_FRAME_HEADER_BYTES, preFramed } from '@segserve/runtime';

export const IMAGE_FIELD = 'image';

export interface UploadLimits {
  /** Largest image, bytes. */
  readonly fileSize: number;
  /**
   * Told the collector's capacity before it allocates (first, and whenever it grows); throws to
   * refuse (the memory budget: a chunked upload is charged as it arrives).
   */
  readonly reserve?: (capacityBytes: number) => void;
}

/** Busboy limits for every multipart request (docs/reliability.md items 2, 3). */
export function multipartLimits(fileSize: number): Record<string, number> {
  return {
    fileSize,
    files: 1, // the image
    fields: 8, // form fields besides it are ignored, but only a few are tolerated
    parts: 10,
    fieldNameSize: 100,
    fieldSize: 4096,
    headerPairs: 16,
  };
}

/**
 * Room kept in front of the image for the upstream request's protobuf header (model, version,
 * mask format, the image's tag and length) and its gRPC frame header: the gateway then sends
 * the upload on from the memory it arrived in (@segserve/runtime grpc-preframed) — for a large
 * upload, a fresh copy costs more in page faults than in memcpy.
 */
export const REQUEST_HEADER_ROOM = 512;

/** An uploaded image, and the same memory with a header written right in front of it. */
export interface UploadedImage {
  readonly image: Buffer;
  /**
   * `header` (≤ REQUEST_HEADER_ROOM − 5 bytes) followed by the image, in the image's memory and
   * registered to be sent without a copy.
   */
  prefixed(header: Buffer): Buffer;
}

/** A byte sink that grows geometrically; with a size hint it never reallocates. */
class ByteCollector {
  #buf: Buffer;
  #length = 0;

  constructor(
    capacity: number,
    private readonly reserve: (capacityBytes: number) => void = () => undefined,
  ) {
    const size = Math.max(capacity, 1024);
    reserve(size);
    this.#buf = ByteCollector.#alloc(size);
  }

  /** Its own memory (never a slice of Node's shared pool): the header room is ours to write. */
  static #alloc(size: number): Buffer {
    return Buffer.allocUnsafeSlow(REQUEST_HEADER_ROOM + size);
  }

  push(chunk: Buffer): void {
    const needed = this.#length + chunk.length;
    if (needed > this.#buf.length - REQUEST_HEADER_ROOM) {
      const size = Math.max(needed, (this.#buf.length - REQUEST_HEADER_ROOM) * 2);
      // Both buffers exist while the bytes are copied.
      this.reserve(this.#buf.length + size);
      const grown = ByteCollector.#alloc(size);
      this.#buf.copy(grown, REQUEST_HEADER_ROOM, REQUEST_HEADER_ROOM, REQUEST_HEADER_ROOM + this.#length);
      this.#buf = grown;
    }
    chunk.copy(this.#buf, REQUEST_HEADER_ROOM + this.#length);
    this.#length = needed;
  }

  get length(): number {
    return this.#length;
  }

  uploaded(): UploadedImage {
    const buf = this.#buf;
    const end = REQUEST_HEADER_ROOM + this.#length;
    return {
      image: buf.subarray(REQUEST_HEADER_ROOM, end),
      prefixed: (header) => {
        const start = REQUEST_HEADER_ROOM - header.length - GRPC_FRAME_HEADER_BYTES;
        if (start < 0) throw new RangeError(`a request header of ${header.length} bytes does not fit the ${REQUEST_HEADER_ROOM} kept for it`);
        header.copy(buf, start + GRPC_FRAME_HEADER_BYTES);
        return preFramed(buf.subarray(start, end));
      },
    };
  }
}

const LIMIT_MESSAGES: Readonly<Record<string, string>> = {
  FST_PARTS_LIMIT: 'too many parts in the form',
  FST_FILES_LIMIT: `send exactly one file, in field '${IMAGE_FIELD}'`,
  FST_FIELDS_LIMIT: 'too many form fields',
};

/** A failure while parsing the form: limits are 413, anything malformed is 400. */
function formError(err: unknown, limits: UploadLimits): SegserveError {
  if (err instanceof SegserveError) return err;
  const e = err as { code?: string; statusCode?: number; message?: string };
  if (e.code === 'FST_REQ_FILE_TOO_LARGE') return tooLarge(limits);
  if (e.statusCode === 413) return new SegserveError('TOO_LARGE', LIMIT_MESSAGES[e.code ?? ''] ?? 'the form is over a limit', { cause: err });
  return new SegserveError('INVALID_INPUT', `malformed multipart body: ${e.message ?? 'unreadable'}`, { cause: err });
}

const tooLarge = (limits: UploadLimits): SegserveError => new SegserveError('TOO_LARGE', `the image is larger than ${limits.fileSize} bytes`);

/**
 * The bytes of field `image`. Other files and fields are read and dropped (they count against
 * the limits). Throws INVALID_INPUT when the field is missing or empty, TOO_LARGE at a limit,
 * UNSUPPORTED_MEDIA_TYPE when the request is not multipart at all.
 */
export async function readImageUpload(request: FastifyRequest, limits: UploadLimits): Promise<UploadedImage> {
  if (!request.isMultipart()) {
    throw new SegserveError('UNSUPPORTED_MEDIA_TYPE', `send multipart/form-data with the image in field '${IMAGE_FIELD}'`);
  }
  const declared = Number(request.headers['content-length']);
  const hint = Number.isFinite(declared) && declared > 0 ? Math.min(declared, limits.fileSize) : 256 * 1024;
  let image: UploadedImage | undefined;
  let sawTruncated = false;
  try {
    for await (const part of request.parts()) {
      if (part.type !== 'file') continue;
      if (part.fieldname !== IMAGE_FIELD || image !== undefined) {
        part.file.resume();
        await finished(part.file).catch(() => undefined);
        continue;
      }
      const sink = new ByteCollector(hint, limits.reserve);
      for await (const chunk of part.file) sink.push(chunk as Buffer);
      if (part.file.truncated) sawTruncated = true;
      image = sink.uploaded();
    }
  } catch (err) {
    throw formError(err, limits);
  }
  if (sawTruncated) throw tooLarge(limits);
  if (image === undefined) throw new SegserveError('INVALID_INPUT', `the form has no file in field '${IMAGE_FIELD}'`);
  if (image.image.length === 0) throw new SegserveError('INVALID_INPUT', `the file in field '${IMAGE_FIELD}' is empty`);
  return image;
}
