// Decodes masks: PNGs whose pixel values are class indices — grayscale (1, 2, 4 or 8 bits), or
// palette images whose indices are the classes (what `?format=color` serves, and what many
// datasets ship). A general image decoder (sharp) would expand a palette into colours and lose
// the indices, so this small decoder reads the indices themselves. Colour (RGB, RGBA, grey +
// alpha), 16-bit and interlaced PNGs are refused: they do not hold class indices.
import { inflateSync } from 'node:zlib';

export interface MaskImage {
  readonly width: number;
  readonly height: number;
  /** Row-major class indices, width × height. */
  readonly pixels: Uint8Array;
}

const SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
/** Channels per colour type: gray, -, RGB, palette, gray+alpha, -, RGBA. */
const CHANNELS: Readonly<Record<number, number>> = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 };
const COLOUR_NAMES: Readonly<Record<number, string>> = { 2: 'RGB', 4: 'grey + alpha', 6: 'RGBA' };

function paeth(a: number, b: number, c: number): number {
  const p = a + b - c;
  const pa = Math.abs(p - a);
  const pb = Math.abs(p - b);
  const pc = Math.abs(p - c);
  return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
}

export function decodePngMask(data: Uint8Array, name = 'mask'): MaskImage {
  const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  if (buf.length < 8 || !buf.subarray(0, 8).equals(SIGNATURE)) throw new Error(`${name}: not a PNG`);
  let offset = 8;
  let width = 0;
  let height = 0;
  let bitDepth = 0;
  let colorType = -1;
  const idat: Buffer[] = [];
  while (offset + 8 <= buf.length) {
    const length = buf.readUInt32BE(offset);
    const type = buf.toString('latin1', offset + 4, offset + 8);
    const body = buf.subarray(offset + 8, offset + 8 + length);
    offset += 12 + length;
    if (type === 'IHDR') {
      width = body.readUInt32BE(0);
      height = body.readUInt32BE(4);
      bitDepth = body[8] ?? 0;
      colorType = body[9] ?? -1;
      if (body[12] !== 0) throw new Error(`${name}: interlaced PNGs are not supported for masks`);
    } else if (type === 'IDAT') {
      idat.push(body);
    } else if (type === 'IEND') {
      break;
    }
  }
  const channels = CHANNELS[colorType];
  if (!channels || width === 0 || height === 0) throw new Error(`${name}: unsupported PNG (colour type ${colorType})`);
  if (channels > 1) throw new Error(`${name}: a mask must be a single-channel PNG of class indices (grey or palette), not ${COLOUR_NAMES[colorType] ?? `colour type ${colorType}`}`);
  if (bitDepth > 8) throw new Error(`${name}: ${bitDepth}-bit PNG is not a class-index mask`);
  const raw = inflateSync(Buffer.concat(idat));
  const bitsPerPixel = bitDepth * channels;
  const stride = Math.ceil((width * bitsPerPixel) / 8);
  const bpp = Math.max(1, bitsPerPixel >> 3);
  if (raw.length < height * (stride + 1)) throw new Error(`${name}: truncated image data`);
  const lines = Buffer.alloc(height * stride);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)];
    const src = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    const row = lines.subarray(y * stride, (y + 1) * stride);
    const prev = y > 0 ? lines.subarray((y - 1) * stride, y * stride) : undefined;
    for (let x = 0; x < stride; x++) {
      const a = x >= bpp ? (row[x - bpp] as number) : 0;
      const b = prev ? (prev[x] as number) : 0;
      const c = prev && x >= bpp ? (prev[x - bpp] as number) : 0;
      const v = src[x] as number;
      switch (filter) {
        case 0: row[x] = v; break;
        case 1: row[x] = (v + a) & 0xff; break;
        case 2: row[x] = (v + b) & 0xff; break;
        case 3: row[x] = (v + ((a + b) >> 1)) & 0xff; break;
        case 4: row[x] = (v + paeth(a, b, c)) & 0xff; break;
        default: throw new Error(`${name}: bad PNG filter ${String(filter)}`);
      }
    }
  }
  const pixels = new Uint8Array(width * height);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      let v: number;
      if (bitDepth === 8) {
        v = lines[y * stride + x] as number;
      } else {
        const bit = x * bitDepth;
        const byte = lines[y * stride + (bit >> 3)] as number;
        v = (byte >> (8 - bitDepth - (bit & 7))) & ((1 << bitDepth) - 1);
      }
      pixels[y * width + x] = v;
    }
  }
  return { width, height, pixels };
}
