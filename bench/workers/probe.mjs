// A preload for a server a benchmark starts (`node --import bench/workers/probe.mjs …`): what
// the process's own logs do not say, as JSON lines on its stdout, for the benchmark to read.
// BENCH_PROBE (comma-separated) chooses:
//   gc       every garbage collection of 1 ms or more (perf_hooks): {"probe": "gc", "start": epoch
//            ms, "ms": pause, "kind": "scavenge" | "mark-compact" | "incremental" | "weak"}
//   headers  when each HTTP/2 request's HEADERS reached the server's 'stream' event (grpc-js
//            serves on node:http2): {"probe": "headers", "at": [epoch ms, …]}, one line per
//            burst (written once no new request has come for 100 ms)
import http2 from 'node:http2';
import { PerformanceObserver, constants } from 'node:perf_hooks';

const probes = new Set((process.env.BENCH_PROBE ?? '').split(',').filter(Boolean));
const epoch = (t = performance.now()) => Math.round((performance.timeOrigin + t) * 10) / 10;
const line = (o) => process.stdout.write(`${JSON.stringify(o)}\n`);

if (probes.has('gc')) {
  const KIND = {
    [constants.NODE_PERFORMANCE_GC_MINOR]: 'scavenge',
    [constants.NODE_PERFORMANCE_GC_MAJOR]: 'mark-compact',
    [constants.NODE_PERFORMANCE_GC_INCREMENTAL]: 'incremental',
    [constants.NODE_PERFORMANCE_GC_WEAKCB]: 'weak',
  };
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      if (e.duration >= 1) line({ probe: 'gc', start: epoch(e.startTime), ms: Math.round(e.duration * 10) / 10, kind: KIND[e.detail?.kind] ?? String(e.detail?.kind) });
    }
  }).observe({ entryTypes: ['gc'] });
}

if (probes.has('headers')) {
  let at = [];
  let quiet;
  const createServer = http2.createServer;
  http2.createServer = function (...args) {
    const server = createServer.apply(this, args);
    server.prependListener('stream', () => {
      at.push(epoch());
      clearTimeout(quiet);
      quiet = setTimeout(() => {
        line({ probe: 'headers', at });
        at = [];
      }, 100);
      quiet.unref();
    });
    return server;
  };
}
