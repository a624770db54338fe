// How long `?format=color` holds the gateway's event loop: the palette PNG of a 4898×4898 mask
// (what a 980-byte 4898×4898 WebP comes back as) encoded synchronously and with
// encodePalettePngAsync, interleaved, with perf_hooks' event-loop delay monitor running.
//
//   node bench/palette-loop.mjs [--repeats 3] [--size 4898]
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { encodePalettePng, encodePalettePngAsync } from '../services/gateway/dist/domain/palette-png.js';
import { loadAverage } from './lib/procs.mjs';
import { round } from './lib/stats.mjs';

const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
};
const repeats = arg('repeats', 3);
const size = arg('size', 4898);
const raw = new Uint8Array(size * size);
for (let i = 0; i < raw.length; i += 7) raw[i] = 1;

async function measure(mode) {
  const monitor = monitorEventLoopDelay({ resolution: 1 });
  const tick = setInterval(() => undefined, 1);
  monitor.enable();
  monitor.reset();
  // The monitor skips its first sample after a reset: let it take a few before encoding.
  await new Promise((r) => setTimeout(r, 20));
  const t0 = performance.now();
  if (mode === 'sync') encodePalettePng(raw, size, size, 2);
  else await encodePalettePngAsync(raw, size, size, 2);
  const ms = performance.now() - t0;
  await new Promise((r) => setTimeout(r, 20));
  monitor.disable();
  clearInterval(tick);
  return { mode, total_ms: round(ms), loop_delay_max_ms: round(monitor.max / 1e6), loadavg: loadAverage()[0] };
}

console.log(`node bench/palette-loop.mjs --repeats ${repeats} --size ${size}`);
for (let r = 0; r < repeats; r++) {
  for (const mode of r % 2 ? ['async', 'sync'] : ['sync', 'async']) console.log(JSON.stringify(await measure(mode)));
}
