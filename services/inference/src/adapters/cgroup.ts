// The cgroup limits moved to @segserve/runtime (the gateway reads the memory limit too).
export { cpuLimit, cpuQuota, memoryLimit, parseCpuMax, parseMemoryLimit } from '@segserve/runtime';
