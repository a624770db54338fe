// What an upload will cost, read from its header alone, before any decoder sees it (issue 11:
// "charged width × height × channels × bytes per sample once the header is read"): format,
// stored size, channels, sample depth, EXIF orientation, progressive/interlaced coding and
// animation. Synchronous and allocation-free, so it runs at the door, ahead of admission.
// The decoder (sharp) still validates the whole file later; this only has to be right about
// what it reads, and refuses what it cannot read.

import { SegserveError } from '@segserve/proto';
import { ALLOWED_FORMATS, sniffImageFormat, type ImageFormat } from './image-format.js';

export interface ImageHeader {
  readonly format: ImageFormat;
  /** Stored size, before EXIF orientation. */
  readonly storedWidth: number;
  readonly storedHeight: number;
  /** Size as displayed (orientation 5–8 swap the sides): the size of the mask we return. */
  readonly width: number;
  readonly height: number;
  /** Colour channels the decoder produces (alpha included). */
  readonly channels: number;
  readonly bytesPerSample: 1 | 2;
  /** EXIF orientation 1–8 (1 when absent). */
  readonly orientation: number;
  /** Progressive JPEG or interlaced PNG: the decoder holds the whole image, not a strip. */
  readonly progressive: boolean;
  readonly animated: boolean;
}

const invalid = (message: string): SegserveError => new SegserveError('INVALID_INPUT', message);

const u16be = (b: Uint8Array, o: number): number => (b[o]! << 8) | b[o + 1]!;
const u32be = (b: Uint8Array, o: number): number => ((b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!) >>> 0;
const u16le = (b: Uint8Array, o: number): number => b[o]! | (b[o + 1]! << 8);
const u24le = (b: Uint8Array, o: number): number => b[o]! | (b[o + 1]! << 8) | (b[o + 2]! << 16);
const u32le = (b: Uint8Array, o: number): number => (b[o]! | (b[o + 1]! << 8) | (b[o + 2]! << 16) | (b[o + 3]! << 24)) >>> 0;
const tag = (b: Uint8Array, o: number): string => String.fromCharCode(b[o]!, b[o + 1]!, b[o + 2]!, b[o + 3]!);

/**
 * EXIF orientation from a TIFF structure ("II*\0" or "MM\0*" at `start`): IFD0's tag 0x0112.
 * Anything unreadable means "no orientation" (1), as libvips treats it.
 */
export function exifOrientation(b: Uint8Array, start: number, end: number): number {
  if (end - start < 8) return 1;
  const le = b[start] === 0x49 && b[start + 1] === 0x49;
  if (!le && !(b[start] === 0x4d && b[start + 1] === 0x4d)) return 1;
  const r16 = (o: number): number => (le ? u16le(b, o) : u16be(b, o));
  const r32 = (o: number): number => (le ? u32le(b, o) : u32be(b, o));
  if (r16(start + 2) !== 42) return 1;
  const ifd = start + r32(start + 4);
  if (ifd + 2 > end) return 1;
  const entries = r16(ifd);
  for (let i = 0; i < entries; i++) {
    const e = ifd + 2 + i * 12;
    if (e + 12 > end) return 1;
    if (r16(e) === 0x0112) {
      const v = r16(e + 8);
      return v >= 1 && v <= 8 ? v : 1;
    }
  }
  return 1;
}

function finish(h: Omit<ImageHeader, 'width' | 'height'>): ImageHeader {
  if (!(h.storedWidth > 0 && h.storedHeight > 0)) throw invalid(`${h.format} has no size`);
  const swap = h.orientation >= 5;
  return { ...h, width: swap ? h.storedHeight : h.storedWidth, height: swap ? h.storedWidth : h.storedHeight };
}

const SOF = new Set([0xc0, 0xc1, 0xc2, 0xc3, 0xc5, 0xc6, 0xc7, 0xc9, 0xca, 0xcb, 0xcd, 0xce, 0xcf]);

function jpegHeader(b: Uint8Array): ImageHeader {
  let o = 2;
  let orientation = 1;
  while (o + 4 <= b.length) {
    if (b[o] !== 0xff) throw invalid('corrupt JPEG header (no marker where one was expected)');
    const marker = b[o + 1]!;
    if (marker === 0xff) {
      o++; // fill byte
      continue;
    }
    if (marker === 0xd8 || marker === 0x01 || (marker >= 0xd0 && marker <= 0xd7)) {
      o += 2;
      continue;
    }
    if (marker === 0xd9 || marker === 0xda) break; // EOI or start of scan before any frame header
    const len = u16be(b, o + 2);
    if (len < 2 || o + 2 + len > b.length) break;
    const seg = o + 4;
    if (marker === 0xe1 && len >= 14 && tag(b, seg) === 'Exif' && b[seg + 4] === 0 && b[seg + 5] === 0) {
      orientation = exifOrientation(b, seg + 6, o + 2 + len);
    } else if (SOF.has(marker)) {
      if (len < 8) throw invalid('corrupt JPEG frame header');
      const precision = b[seg]!;
      return finish({
        format: 'jpeg',
        storedHeight: u16be(b, seg + 1),
        storedWidth: u16be(b, seg + 3),
        // libvips decodes CMYK/YCCK (4 components) as 4 bands; 1 is greyscale.
        channels: b[seg + 5]!,
        bytesPerSample: precision > 8 ? 2 : 1,
        orientation,
        progressive: marker === 0xc2 || marker === 0xc6 || marker === 0xca || marker === 0xce,
        animated: false,
      });
    }
    o += 2 + len;
  }
  throw invalid('truncated JPEG header (no frame header)');
}

const PNG_CHANNELS: Readonly<Record<number, number>> = { 0: 1, 2: 3, 3: 3, 4: 2, 6: 4 };

function pngHeader(b: Uint8Array): ImageHeader {
  if (b.length < 33 || tag(b, 12) !== 'IHDR' || u32be(b, 8) !== 13) throw invalid('truncated PNG header (no IHDR)');
  const depth = b[24]!;
  const colourType = b[25]!;
  const channels = PNG_CHANNELS[colourType];
  if (channels === undefined) throw invalid(`PNG colour type ${colourType} does not exist`);
  let orientation = 1;
  let animated = false;
  let transparency = false;
  // Chunks before the first IDAT: acTL must come before it (APNG), so must tRNS; eXIf may too.
  for (let o = 33; o + 8 <= b.length; ) {
    const len = u32be(b, o);
    const type = tag(b, o + 4);
    if (type === 'IDAT' || type === 'IEND') break;
    if (type === 'acTL') animated = true;
    else if (type === 'tRNS') transparency = true;
    else if (type === 'eXIf') orientation = exifOrientation(b, o + 8, Math.min(b.length, o + 8 + len));
    if (len > 0x7fffffff) break;
    o += 12 + len;
  }
  return finish({
    format: 'png',
    storedWidth: u32be(b, 16),
    storedHeight: u32be(b, 20),
    channels: channels + (transparency && (colourType === 0 || colourType === 2 || colourType === 3) ? 1 : 0),
    bytesPerSample: depth === 16 ? 2 : 1,
    orientation,
    progressive: b[28] === 1,
    animated,
  });
}

function webpHeader(b: Uint8Array): ImageHeader {
  if (b.length < 30) throw invalid('truncated WebP header');
  const first = tag(b, 12);
  let width: number;
  let height: number;
  let alpha = false;
  let animated = false;
  let exif = false;
  if (first === 'VP8 ') {
    // Key frame: 3-byte frame tag, start code 9d 01 2a, then 14-bit width and height.
    if (b[23] !== 0x9d || b[24] !== 0x01 || b[25] !== 0x2a) throw invalid('corrupt WebP (VP8) header');
    width = u16le(b, 26) & 0x3fff;
    height = u16le(b, 28) & 0x3fff;
  } else if (first === 'VP8L') {
    if (b[20] !== 0x2f) throw invalid('corrupt WebP (VP8L) header');
    const bits = u32le(b, 21);
    width = (bits & 0x3fff) + 1;
    height = ((bits >>> 14) & 0x3fff) + 1;
    alpha = ((bits >>> 28) & 1) === 1;
  } else if (first === 'VP8X') {
    const flags = b[20]!;
    alpha = (flags & 0x10) !== 0;
    exif = (flags & 0x08) !== 0;
    animated = (flags & 0x02) !== 0;
    width = u24le(b, 24) + 1;
    height = u24le(b, 27) + 1;
  } else {
    throw invalid(`WebP with an unknown first chunk '${first}'`);
  }
  let orientation = 1;
  // Chunks after the first: ANIM/ANMF mark an animation even when VP8X's flag says otherwise.
  for (let o = 12; o + 8 <= b.length; ) {
    const type = tag(b, o);
    const len = u32le(b, o + 4);
    if (type === 'ANIM' || type === 'ANMF') animated = true;
    else if (type === 'ALPH') alpha = true;
    else if (type === 'EXIF' && exif) {
      // Some writers keep the JPEG APP1 prefix "Exif\0\0" in the chunk.
      const s = o + 8;
      const skip = tag(b, s) === 'Exif' ? 6 : 0;
      orientation = exifOrientation(b, s + skip, Math.min(b.length, s + len));
    }
    o += 8 + len + (len & 1);
  }
  return finish({ format: 'webp', storedWidth: width, storedHeight: height, channels: alpha ? 4 : 3, bytesPerSample: 1, orientation, progressive: false, animated });
}

/**
 * The header of an upload; UNSUPPORTED_MEDIA_TYPE for a format outside the allowlist,
 * INVALID_INPUT for one that claims an allowed format but cannot be read.
 */
export function readImageHeader(bytes: Uint8Array): ImageHeader {
  if (bytes.length === 0) throw invalid('empty image');
  const format = sniffImageFormat(bytes);
  if (format === undefined) throw new SegserveError('UNSUPPORTED_MEDIA_TYPE', `not a ${ALLOWED_FORMATS.join(', ')} image`);
  switch (format) {
    case 'jpeg':
      return jpegHeader(bytes);
    case 'png':
      return pngHeader(bytes);
    case 'webp':
      return webpHeader(bytes);
  }
}
