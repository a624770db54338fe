// A full garbage collection on demand, for the one moment a service knows its garbage is
// worthless and no request is waiting: after its start-up work, before it reports SERVING. V8
// otherwise collects when its heuristics say so — in a serving process, in the middle of the
// first bursts of traffic, where a pause delays every call behind it. Node exposes `gc` only
// when started with --expose-gc; the flag set at run time makes it available in new contexts,
// so the function is taken from one (no flag on the command line, no behaviour change
// elsewhere).
import v8 from 'node:v8';
import vm from 'node:vm';

let gc: (() => void) | undefined;

/** Runs a full (major) garbage collection now; returns its duration in ms. */
export function collectGarbage(): number {
  if (gc === undefined) {
    v8.setFlagsFromString('--expose-gc');
    gc = vm.runInNewContext('gc') as () => void;
  }
  const t0 = performance.now();
  gc();
  return performance.now() - t0;
}
