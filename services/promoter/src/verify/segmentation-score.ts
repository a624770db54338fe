// mIoU on a golden set, the protocol of `segserve eval` and experiments/metrics.py: one
// confusion matrix summed over every pixel of every image, IoU per class = TP / (TP + FP + FN),
// mIoU = the mean over the classes whose IoU is defined. The inference package has the same
// functions (services/inference/src/domain/iou.ts) but does not export them, and services do
// not import each other (DESIGN.md §2), so the promoter keeps this small pure copy.

/** Truth value of "don't care" pixels. */
export const IGNORE_INDEX = 255;

export class ConfusionMatrix {
  readonly counts: Float64Array;

  constructor(readonly numClasses: number) {
    this.counts = new Float64Array(numClasses * numClasses);
  }

  /** Adds one image (row = truth, column = prediction); returns truth pixels out of range. */
  add(predicted: Uint8Array, truth: Uint8Array): number {
    if (predicted.length !== truth.length) throw new RangeError(`prediction has ${predicted.length} pixels, truth ${truth.length}`);
    const n = this.numClasses;
    let invalid = 0;
    for (let i = 0; i < truth.length; i++) {
      const t = truth[i] as number;
      const p = predicted[i] as number;
      if (t === IGNORE_INDEX) continue;
      if (t >= n || p >= n) {
        invalid++;
        continue;
      }
      this.counts[t * n + p] = (this.counts[t * n + p] as number) + 1;
    }
    return invalid;
  }

  /** IoU per class (null when a class is in neither truth nor prediction). */
  iou(): (number | null)[] {
    const n = this.numClasses;
    const c = this.counts;
    const out: (number | null)[] = [];
    for (let k = 0; k < n; k++) {
      let truth = 0;
      let pred = 0;
      for (let j = 0; j < n; j++) {
        truth += c[k * n + j] as number;
        pred += c[j * n + k] as number;
      }
      const tp = c[k * n + k] as number;
      const union = truth + pred - tp;
      out.push(union === 0 ? null : tp / union);
    }
    return out;
  }

  miou(): number {
    const defined = this.iou().filter((v): v is number => v !== null);
    return defined.length === 0 ? Number.NaN : defined.reduce((a, b) => a + b, 0) / defined.length;
  }
}

/** Linear-interpolated percentile (numpy's default), q in [0, 100]; NaN for no values. */
export function percentile(values: readonly number[], q: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const pos = ((sorted.length - 1) * q) / 100;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return (sorted[lo] as number) + ((sorted[hi] as number) - (sorted[lo] as number)) * (pos - lo);
}
