import { describe, expect, it } from 'vitest';
import { mkdtempSync, mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { cpuLimit, cpuQuota, memoryLimit, parseCpuMax, parseMemoryLimit } from './cgroup.js';

describe('cgroup parsing', () => {
  it.each<[string, number | undefined]>([
    ['200000 100000\n', 2],
    ['50000 100000', 0.5],
    ['max 100000', undefined],
    ['', undefined],
  ])('cpu.max %j → %s', (text, expected) => {
    expect(parseCpuMax(text)).toBe(expected);
  });

  it.each<[number, number, number | undefined]>([
    [150000, 100000, 1.5],
    [-1, 100000, undefined],
    [100000, 0, undefined],
  ])('cfs %i/%i → %s', (q, p, expected) => {
    expect(cpuQuota(q, p)).toBe(expected);
  });

  it.each<[string, number | undefined]>([
    ['536870912\n', 536870912],
    ['max\n', undefined],
    ['9223372036854771712', undefined],
    ['garbage', undefined],
  ])('memory %j → %s', (text, expected) => {
    expect(parseMemoryLimit(text)).toBe(expected);
  });
});

describe('cgroup files', () => {
  const root = (files: Record<string, string>): string => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'cgroup-'));
    for (const [f, text] of Object.entries(files)) {
      mkdirSync(path.dirname(path.join(dir, f)), { recursive: true });
      writeFileSync(path.join(dir, f), text);
    }
    return dir;
  };

  it('reads v2 limits, rounding CPU up and capping at visible CPUs', () => {
    const dir = root({ 'cpu.max': '150000 100000', 'memory.max': '536870912' });
    expect(cpuLimit(dir)).toBe(Math.min(2, os.availableParallelism()));
    expect(memoryLimit(dir)).toBe(536870912);
  });

  it('reads v1 limits', () => {
    const dir = root({ 'cpu/cpu.cfs_quota_us': '100000', 'cpu/cpu.cfs_period_us': '100000', 'memory/memory.limit_in_bytes': '268435456' });
    expect(cpuLimit(dir)).toBe(1);
    expect(memoryLimit(dir)).toBe(268435456);
  });

  it('falls back to the visible CPUs and no memory limit', () => {
    const dir = root({});
    expect(cpuLimit(dir)).toBe(os.availableParallelism());
    expect(memoryLimit(dir)).toBeUndefined();
  });
});
