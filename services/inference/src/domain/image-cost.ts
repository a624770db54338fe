// What an image may be and what it will cost, from its header and the model's input size
// (issue 11): the pixel limit, a limit on each side relative to the model's input (the aspect
// ratio may differ from the model's by at most a factor), animation refused, and the bytes a
// Segment request holds while it runs — charged to the memory budget before it is admitted.

import { SegserveError } from '@segserve/proto';
import type { ImageHeader } from './image-header.js';

export interface ImageLimits {
  readonly maxPixels: number;
  /**
   * How far the image's aspect ratio may be from the model input's, as a factor either way.
   * A 24000000×1 PNG is within any pixel limit but costs seconds of CPU to decode and encode
   * for a mask the model sees as one smeared row.
   */
  readonly maxAspectFactor: number;
}

export interface InputSize {
  readonly width: number;
  readonly height: number;
}

/** Refuses what must not be decoded; the message names the limit. */
export function checkImage(h: ImageHeader, limits: ImageLimits, input: InputSize): void {
  if (h.animated) throw new SegserveError('UNSUPPORTED_MEDIA_TYPE', `animated ${h.format} is not supported`);
  const pixels = h.width * h.height;
  if (pixels > limits.maxPixels) throw new SegserveError('TOO_LARGE', `image is ${h.width}×${h.height} = ${pixels} pixels; the limit is ${limits.maxPixels}`);
  const distortion = h.width / h.height / (input.width / input.height);
  const factor = Math.max(distortion, 1 / distortion);
  if (factor > limits.maxAspectFactor) {
    const side = distortion > 1 ? 'wide' : 'tall';
    throw new SegserveError(
      'TOO_LARGE',
      `image is ${h.width}×${h.height}: ${factor.toFixed(1)} times too ${side} for the model's ${input.width}×${input.height} input (the limit is ${limits.maxAspectFactor} times)`,
    );
  }
}

/**
 * sharp's JPEG shrink-on-load factor for a resize to `target` (its pipeline's rule: the
 * largest of 8, 4, 2 not above the shrink, halved when the shrink is exactly that integer).
 */
export function jpegShrinkOnLoad(width: number, height: number, target: InputSize): number {
  const shrink = Math.min(width / target.width, height / target.height);
  let s = shrink >= 8 ? 8 : shrink >= 4 ? 4 : shrink >= 2 ? 2 : 1;
  if (s > 1 && Math.trunc(shrink) === s) s /= 2;
  return s;
}

/**
 * Bytes a Segment request holds while it runs, beyond its upload: the decoded image at the
 * size the decoder produces it (JPEG shrunk on load; WebP scaled while decoding; PNG in full),
 * a progressive JPEG's coefficients, the model-size RGB, the class map, and the mask at the
 * image's size (RAW; a PNG mask is smaller).
 */
export function segmentWorkBytes(h: ImageHeader, input: InputSize): number {
  // The decoder sees stored sides; the target is swapped for orientations 5–8.
  const target = h.orientation >= 5 ? { width: input.height, height: input.width } : input;
  let decoded: number;
  if (h.format === 'jpeg') {
    const s = jpegShrinkOnLoad(h.storedWidth, h.storedHeight, target);
    decoded = Math.ceil(h.storedWidth / s) * Math.ceil(h.storedHeight / s);
  } else if (h.format === 'webp') {
    const s = Math.max(1, Math.min(h.storedWidth / target.width, h.storedHeight / target.height));
    decoded = Math.ceil(h.storedWidth / s) * Math.ceil(h.storedHeight / s);
  } else {
    decoded = h.storedWidth * h.storedHeight;
  }
  const sample = h.channels * h.bytesPerSample;
  const coefficients = h.format === 'jpeg' && h.progressive ? h.storedWidth * h.storedHeight * h.channels * 2 : 0;
  const model = input.width * input.height;
  return decoded * sample + coefficients + model * 3 + model + h.width * h.height;
}

/**
 * One run's activations when the peak cannot be measured (not Linux): a multiple of the input
 * tensor's bytes, the factor measured on the bundled PSPNets (docs/benchmarks.md, "Admission
 * by cost").
 */
export const ACTIVATION_PER_INPUT_BYTE = 10;
