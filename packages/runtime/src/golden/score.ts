// Segmentation quality on a golden set: one confusion matrix accumulated over every image,
// then per-class IoU, mIoU and pixel accuracy (the usual dataset-level definition, so large and
// small images weigh by their pixels). `segserve eval`, the promoter's verification and
// experiments/metrics.py score the same way; test/fixtures/golden-vectors.json holds cases both
// languages check themselves against, so serving and evaluation can never disagree.
import type { MaskImage } from './png-mask.js';

/** Ground-truth value that marks "don't care" pixels (common in segmentation datasets). */
export const IGNORE_INDEX = 255;

/** numClasses × numClasses counts; row = truth, column = prediction. */
export interface Confusion {
  readonly numClasses: number;
  readonly counts: Float64Array;
}

export function emptyConfusion(numClasses: number): Confusion {
  return { numClasses, counts: new Float64Array(numClasses * numClasses) };
}

/**
 * Adds one image. Returns the number of truth pixels that are neither a class nor IGNORE_INDEX
 * (the caller reports them: a mask with such values is not a mask for this model).
 */
export function accumulate(confusion: Confusion, predicted: Uint8Array, truth: Uint8Array): number {
  if (predicted.length !== truth.length) throw new RangeError(`prediction has ${predicted.length} pixels, truth ${truth.length}`);
  const n = confusion.numClasses;
  let invalid = 0;
  for (let i = 0; i < truth.length; i++) {
    const t = truth[i]!;
    const p = predicted[i]!;
    if (t === IGNORE_INDEX) continue;
    // A predicted index beyond the classes would land in the next row: count it as invalid.
    if (t >= n || p >= n) {
      invalid++;
      continue;
    }
    confusion.counts[t * n + p]!++;
  }
  return invalid;
}

export interface SegmentationScores {
  /** IoU per class; null when the class is in neither truth nor prediction. */
  readonly iou: readonly (number | null)[];
  /** Mean over the classes whose IoU is defined. */
  readonly miou: number;
  readonly pixelAccuracy: number;
  readonly pixels: number;
}

export function scores(confusion: Confusion): SegmentationScores {
  const n = confusion.numClasses;
  const c = confusion.counts;
  const iou: (number | null)[] = [];
  let total = 0;
  let correct = 0;
  for (let k = 0; k < n; k++) {
    let truthK = 0;
    let predK = 0;
    for (let j = 0; j < n; j++) {
      truthK += c[k * n + j]!;
      predK += c[j * n + k]!;
    }
    const tp = c[k * n + k]!;
    const union = truthK + predK - tp;
    iou.push(union === 0 ? null : tp / union);
    total += truthK;
    correct += tp;
  }
  const defined = iou.filter((v): v is number => v !== null);
  return {
    iou,
    // NaN, not 0, when no class is defined: an empty golden set must never look like a score.
    miou: defined.length === 0 ? NaN : defined.reduce((a, b) => a + b, 0) / defined.length,
    pixelAccuracy: total === 0 ? 0 : correct / total,
    pixels: total,
  };
}

/** Where a predicted mask and its ground truth come from, for error messages. */
export interface MaskNames {
  /** The ground-truth mask (a file). */
  readonly truth: string;
  /** The image the prediction was made for. */
  readonly image: string;
}

/**
 * Scores a golden set image by image: refuses a prediction of another size than its truth, and
 * truth pixels that are neither a class nor IGNORE_INDEX, naming the files.
 */
export class SegmentationScorer {
  readonly #confusion: Confusion;
  #images = 0;

  constructor(readonly numClasses: number) {
    this.#confusion = emptyConfusion(numClasses);
  }

  add(predicted: MaskImage, truth: MaskImage, names: MaskNames): void {
    if (truth.width !== predicted.width || truth.height !== predicted.height) {
      throw new Error(`${names.truth}: mask is ${truth.width}×${truth.height} but the image ${names.image} is ${predicted.width}×${predicted.height}`);
    }
    const invalid = accumulate(this.#confusion, predicted.pixels, truth.pixels);
    if (invalid > 0) throw new Error(`${names.truth}: ${invalid} pixels are not a class index 0..${this.numClasses - 1} (or ${IGNORE_INDEX} = ignore)`);
    this.#images++;
  }

  get images(): number {
    return this.#images;
  }

  scores(): SegmentationScores {
    return scores(this.#confusion);
  }
}

/** Linear-interpolated percentile (numpy's default), q in [0, 100]. */
export function percentile(values: readonly number[], q: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const pos = ((sorted.length - 1) * q) / 100;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo);
}
