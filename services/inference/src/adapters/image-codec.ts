// sharp (libvips) behind the ImageCodec port. Untrusted input: the format is judged by its
// bytes (allowlist), the pixel count by the header before any decoding, truncation and decoder
// warnings are errors (`failOn: 'warning'`), and EXIF orientation is applied so that the mask
// matches the image as displayed.

import sharp from 'sharp';
import { SegserveError } from '@segserve/proto';
import { ALLOWED_FORMATS, sniffImageFormat } from '../domain/image-format.js';
import type { ImageCodec, ProbedImage } from '../ports.js';

export interface SharpCodecOptions {
  readonly maxInputPixels: number;
  /** Resampling kernel for the resize to the model's input size. */
  readonly kernel?: keyof sharp.KernelEnum;
}

let configured = false;

/**
 * sharp's operation cache only helps when the same file is processed repeatedly, and its
 * thread pool would compete with onnxruntime for the same cores (DESIGN.md §10).
 */
function configureSharpOnce(): void {
  if (configured) return;
  sharp.cache(false);
  sharp.concurrency(1);
  configured = true;
}

const bytesOf = (b: Uint8Array): Buffer => (Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength));

export class SharpCodec implements ImageCodec {
  readonly #maxPixels: number;
  readonly #kernel: keyof sharp.KernelEnum;

  constructor(options: SharpCodecOptions) {
    configureSharpOnce();
    this.#maxPixels = options.maxInputPixels;
    // Antialiased linear: closest to PIL's bilinear resize used when training (experiments/).
    this.#kernel = options.kernel ?? 'linear';
  }

  async probe(bytes: Uint8Array): Promise<ProbedImage> {
    if (bytes.length === 0) throw new SegserveError('INVALID_INPUT', 'empty image');
    const format = sniffImageFormat(bytes);
    if (format === undefined) throw new SegserveError('UNSUPPORTED_MEDIA_TYPE', `not a ${ALLOWED_FORMATS.join(', ')} image`);
    let meta: sharp.Metadata;
    try {
      meta = await sharp(bytesOf(bytes), { failOn: 'warning', limitInputPixels: false }).metadata();
    } catch (err) {
      throw new SegserveError('INVALID_INPUT', `unreadable ${format} header`, { cause: err });
    }
    if (meta.format !== format) {
      throw new SegserveError('UNSUPPORTED_MEDIA_TYPE', `${format} signature but ${meta.format} content`);
    }
    if ((meta.pages ?? 1) > 1) throw new SegserveError('UNSUPPORTED_MEDIA_TYPE', `animated ${format} is not supported`);
    const width = meta.autoOrient.width;
    const height = meta.autoOrient.height;
    if (!(width > 0 && height > 0)) throw new SegserveError('INVALID_INPUT', `${format} has no size`);
    if (width * height > this.#maxPixels) {
      throw new SegserveError('TOO_LARGE', `image is ${width}×${height} = ${width * height} pixels; the limit is ${this.#maxPixels}`);
    }
    return { format, width, height };
  }

  async decodeResized(bytes: Uint8Array, width: number, height: number): Promise<Uint8Array> {
    try {
      const { data, info } = await sharp(bytesOf(bytes), { failOn: 'warning', limitInputPixels: this.#maxPixels, sequentialRead: true })
        .autoOrient()
        .resize(width, height, { fit: 'fill', kernel: this.#kernel })
        .removeAlpha()
        .toColourspace('srgb')
        .raw({ depth: 'uchar' })
        .toBuffer({ resolveWithObject: true });
      if (info.channels !== 3 || info.width !== width || info.height !== height) {
        throw new Error(`decoded to ${info.width}×${info.height}×${info.channels}, expected ${width}×${height}×3`);
      }
      return data;
    } catch (err) {
      throw new SegserveError('INVALID_INPUT', 'corrupt or truncated image', { cause: err });
    }
  }

  async encodeMask(mask: Uint8Array, width: number, height: number): Promise<Buffer> {
    // Masks are flat regions: fast zlib and no adaptive filtering is small enough and cheap.
    // b-w keeps one channel: sharp would otherwise convert to its default sRGB output.
    return sharp(bytesOf(mask), { raw: { width, height, channels: 1 } })
      .toColourspace('b-w')
      .png({ compressionLevel: 2, adaptiveFiltering: false })
      .toBuffer();
  }
}

