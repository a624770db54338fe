// A full garbage collection on demand, for the one moment a service knows its garbage is
// worthless and no request is waiting: after its start-up work, before it reports SERVING. V8
// otherwise collects when its heuristics say so — in a serving process, in the middle of the
// first bursts of traffic, where a pause delays every call behind it. A young-generation
// collection on demand, for a thread that allocates too little JavaScript for V8 to collect soon
// but drops large buffers (an onnxruntime worker: each run's output copy). Node exposes `gc` only
// when started with --expose-gc; the flag set at run time makes it available in new contexts,
// so the function is taken from one (no flag on the command line, no behaviour change
// elsewhere).
import v8 from 'node:v8';
import vm from 'node:vm';

type Gc = (options?: { type: 'major' | 'minor' }) => void;

let gc: Gc | undefined;

function exposed(): Gc {
  if (gc === undefined) {
    v8.setFlagsFromString('--expose-gc');
    gc = vm.runInNewContext('gc') as Gc;
  }
  return gc;
}

/** Runs a full (major) garbage collection now; returns its duration in ms. */
export function collectGarbage(): number {
  const collect = exposed();
  const t0 = performance.now();
  collect();
  return performance.now() - t0;
}

/**
 * Runs a young-generation (minor) collection now: what was allocated since the last collection
 * and is no longer referenced is freed, with the memory of its ArrayBuffers; returns its duration in ms.
 */
export function collectYoungGarbage(): number {
  const collect = exposed();
  const t0 = performance.now();
  collect({ type: 'minor' });
  return performance.now() - t0;
}

/**
 * Large buffers outside V8's heap (a decoded image, a model's output copy) are freed only when
 * V8 collects the small objects that hold them, and V8 collects by the JavaScript its thread
 * allocates, not by them: between its collections they stay resident. Told the size of each such
 * buffer once its last reference is dropped, the meter runs a young-generation collection
 * whenever `thresholdBytes` of them have been dropped since the last one, so that at most about
 * that much of them waits (and a thread dropping small buffers seldom pays for a collection).
 * The caller must hold no reference to the buffers it reports, not even as an argument.
 */
export class GarbageMeter {
  /**
   * 4 MiB: at 1152×768 a model output's copy (7 MB) is collected after every run and a decoded
   * image (2.5 MiB) after every second one; small models' buffers (0.2–0.5 MB) every 10–25.
   */
  static readonly DEFAULT_THRESHOLD_BYTES = 4 * 2 ** 20;

  readonly thresholdBytes: number;
  readonly #collect: () => unknown;
  #dropped = 0;

  constructor(thresholdBytes: number = GarbageMeter.DEFAULT_THRESHOLD_BYTES, collect: () => unknown = collectYoungGarbage) {
    if (!(thresholdBytes >= 0)) throw new RangeError(`thresholdBytes must be ≥ 0, got ${thresholdBytes}`);
    this.thresholdBytes = thresholdBytes;
    this.#collect = collect;
  }

  /** Counts `bytes` dropped; collects (and returns true) once the count reaches the threshold. */
  dropped(bytes: number): boolean {
    this.#dropped += bytes;
    if (this.#dropped < this.thresholdBytes) return false;
    this.#dropped = 0;
    this.#collect();
    return true;
  }
}
