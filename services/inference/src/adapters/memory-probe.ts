// This process's resident memory from /proc/self (Linux): the current set, the peak since the
// last reset, and the reset itself (writing 5 to clear_refs resets the peak, Linux ≥ 4.0).
// Used once at start-up to measure the baseline and one model run's activations, from which
// the admission budget is derived. Elsewhere every read returns undefined.

import { readFileSync, writeFileSync } from 'node:fs';

export interface MemoryReading {
  readonly rssBytes: number;
  readonly peakBytes: number;
}

export function readMemory(): MemoryReading | undefined {
  try {
    const status = readFileSync('/proc/self/status', 'utf8');
    const kb = (key: string): number | undefined => {
      const v = new RegExp(`^${key}:\\s+(\\d+)\\s+kB`, 'm').exec(status)?.[1];
      return v === undefined ? undefined : Number(v) * 1024;
    };
    const rss = kb('VmRSS');
    const peak = kb('VmHWM');
    return rss === undefined || peak === undefined ? undefined : { rssBytes: rss, peakBytes: peak };
  } catch {
    return undefined;
  }
}

/** Resets the peak to the current RSS; false where the kernel does not allow it. */
export function resetPeak(): boolean {
  try {
    writeFileSync('/proc/self/clear_refs', '5');
    return true;
  } catch {
    return false;
  }
}

/** The two readings above, injectable (tests give the start-up scripted readings). */
export interface MemoryProbe {
  read(): MemoryReading | undefined;
  resetPeak(): boolean;
}

export const processMemory: MemoryProbe = { read: readMemory, resetPeak };
