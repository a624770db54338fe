// sharp (libvips) behind the ImageCodec port. Untrusted input: only images whose header was read
// and checked (domain/image-header.ts, image-cost.ts) get here; truncation and decoder warnings
// are errors (`failOn: 'warning'`), and EXIF orientation is applied so that the mask matches the
// image as displayed. The resize to the model's input lets libvips shrink JPEG (DCT scaling)
// and WebP on load, so a large upload is never decoded in full.

import sharp from 'sharp';
import { SegserveError } from '@segserve/proto';
import { GarbageMeter } from '@segserve/runtime';
import type { ImageCodec } from '../ports.js';

export interface SharpCodecOptions {
  readonly maxInputPixels: number;
  /** Resampling kernel for the resize to the model's input size. */
  readonly kernel?: keyof sharp.KernelEnum;
  /** Counts the decoded buffers dropped and collects them (default: a GarbageMeter with its default threshold). */
  readonly garbage?: { dropped(bytes: number): unknown };
}

let configured = false;

/**
 * sharp's operation cache only helps when the same file is processed repeatedly, and its
 * thread pool would compete with onnxruntime for the same cores (docs/architecture.md#memory-and-admission-by-cost).
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
  readonly #garbage: { dropped(bytes: number): unknown };

  constructor(options: SharpCodecOptions) {
    configureSharpOnce();
    this.#maxPixels = options.maxInputPixels;
    // Antialiased linear: closest to PIL's bilinear resize used when training (experiments/).
    this.#kernel = options.kernel ?? 'linear';
    this.#garbage = options.garbage ?? new GarbageMeter();
  }

  /**
   * sharp's output is memory libvips allocated, freed when V8 collects the Buffer that wraps it;
   * the event loop's own collections come too seldom for full-size images, several of which would
   * otherwise stay resident, dead, beside a model run.
   */
  dropped(bytes: number): void {
    this.#garbage.dropped(bytes);
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
}
