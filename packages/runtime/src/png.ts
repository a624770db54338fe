// The PNG container, shared by everything that writes or re-labels masks: the signature, chunks
// with their CRC, and a bounded chunk reader. No pixels are decoded here.
import { crc32 } from 'node:zlib';

export const PNG_SIGNATURE: Uint8Array = Uint8Array.of(0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a);

/** One chunk: length, four-letter type, data, CRC-32 of type and data. */
export function pngChunk(type: string, data: Uint8Array): Buffer {
  if (!/^[A-Za-z]{4}$/.test(type)) throw new RangeError(`bad PNG chunk type '${type}'`);
  const out = Buffer.alloc(12 + data.length);
  out.writeUInt32BE(data.length, 0);
  out.write(type, 4, 'latin1');
  out.set(data, 8);
  out.writeUInt32BE(crc32(out.subarray(4, 8 + data.length)) >>> 0, 8 + data.length);
  return out;
}

/** IHDR data: width, height, bit depth, colour type; compression, filter and interlace 0. */
export function pngHeader(width: number, height: number, bitDepth: number, colourType: number): Uint8Array {
  if (!(Number.isInteger(width) && Number.isInteger(height) && width > 0 && height > 0)) throw new RangeError(`bad PNG size ${width}×${height}`);
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = bitDepth;
  ihdr[9] = colourType;
  return ihdr;
}

export interface PngChunk {
  readonly type: string;
  readonly data: Uint8Array;
  /** The whole chunk (length, type, data, CRC) as it stands in the file. */
  readonly raw: Uint8Array;
}

/**
 * The chunks of a PNG, in order, up to and including IEND. Throws RangeError for a missing
 * signature, a chunk running past the end, or a file without IEND. CRCs are not checked.
 */
export function readPngChunks(png: Uint8Array): PngChunk[] {
  if (png.length < 8 || PNG_SIGNATURE.some((b, i) => png[i] !== b)) throw new RangeError('not a PNG (no signature)');
  const view = new DataView(png.buffer, png.byteOffset, png.byteLength);
  const chunks: PngChunk[] = [];
  let at = 8;
  while (at + 12 <= png.length) {
    const length = view.getUint32(at);
    const end = at + 12 + length;
    if (end > png.length) throw new RangeError(`PNG chunk at byte ${at} runs past the end`);
    const type = String.fromCharCode(png[at + 4]!, png[at + 5]!, png[at + 6]!, png[at + 7]!);
    chunks.push({ type, data: png.subarray(at + 8, at + 8 + length), raw: png.subarray(at, end) });
    if (type === 'IEND') return chunks;
    at = end;
  }
  throw new RangeError('PNG without IEND');
}
