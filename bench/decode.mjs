// The decode stage alone (issue 15): what libvips costs to turn the golden JPEGs (1152×768) into
// the 288×192 RGB the small model takes, with sharp as the inference service configures it (no
// cache, one thread), beside variants that show where the time goes. Variants interleaved, five
// rounds; wall and CPU ms per image, median over rounds.
//
//   node bench/decode.mjs [--rounds 5] [--concurrency 1]
import { readFileSync } from 'node:fs';
import sharp from 'sharp';
import { args } from './lib/args.mjs';
import { loadImages } from './lib/images.mjs';
import { loadAverage } from './lib/procs.mjs';
import { median, round } from './lib/stats.mjs';

const a = args(process.argv.slice(2));
const rounds = Number(a.rounds ?? 5);
sharp.cache(false);
sharp.concurrency(Number(a.concurrency ?? 1));
const images = loadImages().filter((i) => i.file.endsWith('.jpg')).map((i) => i.bytes ?? readFileSync(i.file));

// The same photographs as a client that resizes before uploading would send them (288×192, JPEG q90).
const small = new Map(await Promise.all(images.map(async (b) => [b, await sharp(b).resize(288, 192, { fit: 'fill' }).jpeg({ quality: 90 }).toBuffer()])));

const variants = {
  // What services/inference/src/adapters/image-codec.ts does (JPEG shrink-on-load 1/2 for an exact ×4).
  serving: (b) => sharp(b, { failOn: 'warning', sequentialRead: true }).autoOrient().resize(288, 192, { fit: 'fill', kernel: 'linear' }).removeAlpha().toColourspace('srgb').raw({ depth: 'uchar' }).toBuffer(),
  // Options of the serving decode, one changed at a time.
  'no autoOrient/removeAlpha/toColourspace': (b) => sharp(b, { failOn: 'warning', sequentialRead: true }).resize(288, 192, { fit: 'fill', kernel: 'linear' }).raw({ depth: 'uchar' }).toBuffer(),
  'no sequentialRead': (b) => sharp(b, { failOn: 'warning' }).autoOrient().resize(288, 192, { fit: 'fill', kernel: 'linear' }).removeAlpha().toColourspace('srgb').raw({ depth: 'uchar' }).toBuffer(),
  'fastShrinkOnLoad false': (b) => sharp(b, { failOn: 'warning', sequentialRead: true }).autoOrient().resize(288, 192, { fit: 'fill', kernel: 'linear', fastShrinkOnLoad: false }).removeAlpha().toColourspace('srgb').raw({ depth: 'uchar' }).toBuffer(),
  'nearest kernel': (b) => sharp(b, { failOn: 'warning', sequentialRead: true }).resize(288, 192, { fit: 'fill', kernel: 'nearest' }).raw().toBuffer(),
  // A reduction ≥ 5× gets shrink-on-load 1/4: the cost of the JPEG decode at that scale.
  '1/4 shrink-on-load (230×153)': (b) => sharp(b, { failOn: 'warning', sequentialRead: true }).resize(230, 153, { fit: 'fill', kernel: 'linear' }).raw().toBuffer(),
  'header only': (b) => sharp(b).metadata(),
  // The serving decode of an upload already at the model's size (no shrink, no resize).
  'serving, 288×192 upload': (b) => sharp(small.get(b), { failOn: 'warning', sequentialRead: true }).autoOrient().resize(288, 192, { fit: 'fill', kernel: 'linear' }).removeAlpha().toColourspace('srgb').raw({ depth: 'uchar' }).toBuffer(),
};

const names = Object.keys(variants);
const results = Object.fromEntries(names.map((n) => [n, { wall: [], cpu: [] }]));
console.log(`decode: ${images.length} golden JPEGs, ${rounds} rounds, load ${loadAverage().join(' ')}`);
for (let r = 0; r < rounds; r++) {
  for (const name of [...names.slice(r % names.length), ...names.slice(0, r % names.length)]) {
    const t0 = performance.now();
    const c0 = process.cpuUsage();
    for (let i = 0; i < 4; i++) for (const b of images) await variants[name](b);
    const cpu = process.cpuUsage(c0);
    const n = 4 * images.length;
    results[name].wall.push((performance.now() - t0) / n);
    results[name].cpu.push((cpu.user + cpu.system) / 1000 / n);
  }
}
for (const name of names) console.log(`  ${name.padEnd(40)} ${round(median(results[name].wall), 2)} ms/img wall, ${round(median(results[name].cpu), 2)} ms/img CPU`);
console.log(`load ${loadAverage().join(' ')}`);
