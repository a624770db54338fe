// CPU and memory limits of this container from cgroup v2 (cpu.max, memory.max) or v1
// (cpu.cfs_quota_us / cpu.cfs_period_us, memory.limit_in_bytes). Parsing is pure; reading the
// files is the only I/O and missing files mean "no limit".

import { readFileSync } from 'node:fs';
import os from 'node:os';

/** v2 cpu.max "200000 100000" → 2; "max 100000" → undefined. */
export function parseCpuMax(text: string): number | undefined {
  const [quota, period] = text.trim().split(/\s+/);
  if (quota === undefined || quota === 'max' || period === undefined) return undefined;
  return cpuQuota(Number(quota), Number(period));
}

/** v1 quota/period in microseconds; quota -1 = unlimited. */
export function cpuQuota(quota: number, period: number): number | undefined {
  if (!Number.isFinite(quota) || !Number.isFinite(period) || quota <= 0 || period <= 0) return undefined;
  return quota / period;
}

/** v1 reports "unlimited" as a huge page-aligned number (≈ 2^63); treat ≥ 2^60 as none. */
export function parseMemoryLimit(text: string): number | undefined {
  const t = text.trim();
  if (t === '' || t === 'max') return undefined;
  const v = Number(t);
  if (!Number.isFinite(v) || v <= 0 || v >= 2 ** 60) return undefined;
  return v;
}

const CGROUP = '/sys/fs/cgroup';

function readText(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

/** CPUs this process may use: the cgroup quota rounded up, capped by the visible CPUs. */
export function cpuLimit(root = CGROUP): number {
  const visible = os.availableParallelism();
  const v2 = readText(`${root}/cpu.max`);
  let quota = v2 === undefined ? undefined : parseCpuMax(v2);
  if (quota === undefined && v2 === undefined) {
    const q = readText(`${root}/cpu/cpu.cfs_quota_us`) ?? readText(`${root}/cpu,cpuacct/cpu.cfs_quota_us`);
    const p = readText(`${root}/cpu/cpu.cfs_period_us`) ?? readText(`${root}/cpu,cpuacct/cpu.cfs_period_us`);
    if (q !== undefined && p !== undefined) quota = cpuQuota(Number(q), Number(p));
  }
  return quota === undefined ? visible : Math.max(1, Math.min(visible, Math.ceil(quota)));
}

/** The memory limit in bytes, or undefined when none is set. */
export function memoryLimit(root = CGROUP): number | undefined {
  const v2 = readText(`${root}/memory.max`);
  if (v2 !== undefined) return parseMemoryLimit(v2);
  const v1 = readText(`${root}/memory/memory.limit_in_bytes`);
  return v1 === undefined ? undefined : parseMemoryLimit(v1);
}
