// Model output → class mask → the image's own size → per-class statistics (docs/architecture.md#model-package).

import type { OutputKind } from '@segserve/proto';

export interface OutputSpec {
  readonly kind: OutputKind;
  /** For single-channel outputs (sigmoid, probabilities); the manifest default is 0.5. */
  readonly threshold: number;
}

/**
 * One class index per pixel from an output of `channels` planes of `plane` values.
 * Multi-channel logits/probabilities: argmax (ties go to the lower index, like numpy).
 * One channel: probabilities `> threshold`; sigmoid logits `sigmoid(x) > threshold`, compared
 * as `x > logit(threshold)` so that no pixel needs an exp().
 */
export function classMap(output: Float32Array, channels: number, plane: number, spec: OutputSpec): Uint8Array {
  return classMapCounted(output, channels, plane, spec).mask;
}

/** A class map and how many pixels it has of each class (index = class; at least 2 entries). */
export interface CountedClassMap {
  readonly mask: Uint8Array;
  readonly counts: Uint32Array;
}

/**
 * classMap, counting the pixels of each class in the same pass: the statistics of a mask served
 * at the model's own size then need no second pass over it (classStatsResized's `srcCounts`).
 */
export function classMapCounted(output: Float32Array, channels: number, plane: number, spec: OutputSpec): CountedClassMap {
  if (output.length !== channels * plane) throw new RangeError(`output has ${output.length} values, expected ${channels}×${plane}`);
  if (channels > 256) throw new RangeError(`at most 256 classes fit a uint8 mask, got ${channels}`);
  const mask = new Uint8Array(plane);
  const counts = new Uint32Array(Math.max(2, channels));
  if (channels <= 2) {
    let ones = 0;
    if (channels === 1) {
      const cut = spec.kind === 'sigmoid' ? logit(spec.threshold) : spec.threshold;
      for (let i = 0; i < plane; i++) {
        const v = output[i]! > cut ? 1 : 0;
        mask[i] = v;
        ones += v;
      }
    } else {
      for (let i = 0; i < plane; i++) {
        const v = output[plane + i]! > output[i]! ? 1 : 0;
        mask[i] = v;
        ones += v;
      }
    }
    counts[0] = plane - ones;
    counts[1] = ones;
    return { mask, counts };
  }
  for (let i = 0; i < plane; i++) {
    let best = output[i]!;
    let arg = 0;
    for (let c = 1, o = plane + i; c < channels; c++, o += plane) {
      const v = output[o]!;
      if (v > best) {
        best = v;
        arg = c;
      }
    }
    mask[i] = arg;
    counts[arg]!++;
  }
  return { mask, counts };
}

/** logit(t) = ln(t / (1 − t)); ±Infinity at the ends so that `x > logit(t)` stays exact. */
export function logit(t: number): number {
  if (t <= 0) return -Infinity;
  if (t >= 1) return Infinity;
  return Math.log(t / (1 - t));
}

/** Source index for destination index `d` under nearest-neighbour scaling (pixel centres). */
export function nearestSource(d: number, srcSize: number, dstSize: number): number {
  return Math.min(srcSize - 1, Math.floor(((d + 0.5) * srcSize) / dstSize));
}

/**
 * Nearest-neighbour resize of a one-byte-per-pixel mask. Class indices must never be blended,
 * so no other kernel is correct here. Rows that map to the same source row are copied whole.
 */
export function resizeNearest(src: Uint8Array, srcWidth: number, srcHeight: number, dstWidth: number, dstHeight: number): Uint8Array {
  if (src.length !== srcWidth * srcHeight) throw new RangeError(`mask has ${src.length} pixels, expected ${srcWidth}×${srcHeight}`);
  if (srcWidth === dstWidth && srcHeight === dstHeight) return src;
  const dst = new Uint8Array(dstWidth * dstHeight);
  const cols = new Uint32Array(dstWidth);
  for (let x = 0; x < dstWidth; x++) cols[x] = nearestSource(x, srcWidth, dstWidth);
  let prevSrcRow = -1;
  for (let y = 0; y < dstHeight; y++) {
    const sy = nearestSource(y, srcHeight, dstHeight);
    const o = y * dstWidth;
    if (sy === prevSrcRow) {
      dst.copyWithin(o, o - dstWidth, o);
      continue;
    }
    const s = sy * srcWidth;
    for (let x = 0; x < dstWidth; x++) dst[o + x] = src[s + cols[x]!]!;
    prevSrcRow = sy;
  }
  return dst;
}

export interface ClassStat {
  readonly name: string;
  readonly pixels: number;
  readonly fraction: number;
}

export function classStats(mask: Uint8Array, classes: readonly string[]): ClassStat[] {
  // Integer counts (a uint8 mask has at most 256 classes): cheaper than float increments.
  const counts = new Uint32Array(256);
  for (let i = 0; i < mask.length; i++) counts[mask[i]!]!++;
  return toStats(counts, mask.length, classes);
}

/** How many destination indices map to each source index under nearestSource(). */
function replication(srcSize: number, dstSize: number): Uint32Array {
  const rep = new Uint32Array(srcSize);
  for (let d = 0; d < dstSize; d++) rep[nearestSource(d, srcSize, dstSize)]!++;
  return rep;
}

/**
 * classStats of resizeNearest(src, …, dstWidth, dstHeight), computed on the small mask: each
 * source pixel stands for (rows mapped to it) × (columns mapped to it) output pixels. Exact,
 * and it saves a pass over the full-size mask. `srcCounts`: the pixels of each class in `src` when
 * already known (classMapCounted's); at the same size they are the statistics, with no pass at all.
 */
export function classStatsResized(src: Uint8Array, srcWidth: number, srcHeight: number, dstWidth: number, dstHeight: number, classes: readonly string[], srcCounts?: Uint32Array): ClassStat[] {
  if (srcWidth === dstWidth && srcHeight === dstHeight) return srcCounts ? toStats(srcCounts, srcWidth * srcHeight, classes) : classStats(src, classes);
  const rows = replication(srcHeight, dstHeight);
  const cols = replication(srcWidth, dstWidth);
  const counts = new Float64Array(classes.length);
  for (let y = 0; y < srcHeight; y++) {
    const r = rows[y]!;
    if (r === 0) continue;
    const o = y * srcWidth;
    for (let x = 0; x < srcWidth; x++) counts[src[o + x]!]! += r * cols[x]!;
  }
  return toStats(counts, dstWidth * dstHeight, classes);
}

function toStats(counts: Float64Array | Uint32Array, total: number, classes: readonly string[]): ClassStat[] {
  return classes.map((name, c) => {
    const pixels = counts[c] ?? 0;
    return { name, pixels, fraction: total === 0 ? 0 : pixels / total };
  });
}
