// The decode stage alone (issue 15): what libvips costs to turn the golden JPEGs (1152×768) into
// the 288×192 RGB the small model takes, with sharp as the inference service configures it (no
// cache, one thread), beside variants that show where the time goes. Variants interleaved, five
// rounds; wall and CPU ms per image, median over rounds.
//
// --djpeg adds libjpeg-turbo's own decoder (Debian's djpeg, `apt-get install libjpeg-turbo-progs`)
// at each DCT scale, one process per image, CPU from the children's accounting less that of a
// process decoding an 8×8 JPEG: the floor of the JPEG decode without libvips. At 1/8 only the DC
// coefficient is inverse-transformed, so that row is close to the entropy (Huffman) decode alone.
// --pil: the same decoder family inside one process, without start-up costs: Debian python3's
// Pillow (libjpeg-turbo) decoding each image at each DCT scale (`draft`), CPU time per image.
// --sharp-options adds the serving decode with one more of sharp's options changed at a time.
//
//   node bench/decode.mjs [--rounds 5] [--concurrency 1] [--djpeg] [--pil] [--sharp-options]
import { execFileSync, spawnSync } from 'node:child_process';
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

if (a['sharp-options']) {
  const serving = (b, input = {}, out = (p) => p.raw({ depth: 'uchar' })) => out(sharp(b, { failOn: 'warning', sequentialRead: true, ...input }).autoOrient().resize(288, 192, { fit: 'fill', kernel: 'linear' }).removeAlpha().toColourspace('srgb')).toBuffer();
  Object.assign(variants, {
    'serving, failOn none': (b) => serving(b, { failOn: 'none' }),
    'serving, no toColourspace (ICC untouched)': (b) => sharp(b, { failOn: 'warning', sequentialRead: true }).autoOrient().resize(288, 192, { fit: 'fill', kernel: 'linear' }).removeAlpha().raw().toBuffer(),
    'serving, keepIccProfile': (b) => serving(b, {}, (p) => p.keepIccProfile().raw({ depth: 'uchar' })),
    'serving, 2 libvips threads': async (b) => {
      sharp.concurrency(2);
      try {
        return await serving(b);
      } finally {
        sharp.concurrency(Number(a.concurrency ?? 1));
      }
    },
    'serving, libvips cache on': async (b) => {
      sharp.cache(true);
      try {
        return await serving(b);
      } finally {
        sharp.cache(false);
      }
    },
    '1/8 shrink-on-load (144×96)': (b) => sharp(b, { failOn: 'warning', sequentialRead: true }).resize(144, 96, { fit: 'fill', kernel: 'linear' }).raw().toBuffer(),
    'full decode, no resize (1152×768)': (b) => sharp(b, { failOn: 'warning', sequentialRead: true }).raw().toBuffer(),
  });
}

if (a.djpeg) {
  try {
    execFileSync('djpeg', ['-version'], { stdio: 'ignore' });
  } catch {
    throw new Error('djpeg not found: apt-get install libjpeg-turbo-progs');
  }
  const tiny = await sharp({ create: { width: 8, height: 8, channels: 3, background: '#808080' } }).jpeg().toBuffer();
  const djpeg = (scale, fixed) => (b) => {
    const r = spawnSync('djpeg', ['-scale', scale, '-pnm'], { input: fixed ?? b, maxBuffer: 1 << 24 });
    if (r.status !== 0) throw new Error(`djpeg -scale ${scale}: ${r.stderr}`);
  };
  for (const scale of ['1/1', '1/2', '1/4', '1/8']) variants[`djpeg -scale ${scale}`] = djpeg(scale);
  variants['djpeg start-up (8×8 JPEG)'] = djpeg('1/1', tiny);
}

// Pillow's JPEG decode at each DCT scale, rounds interleaved, median CPU ms per image.
const PIL = `
import io, sys, time
from PIL import Image, features
paths, rounds = sys.argv[1:-1], int(sys.argv[-1])
data = [open(p, 'rb').read() for p in paths]
scales = {'1/1': None, '1/2': (576, 384), '1/4': (288, 192), '1/8': (144, 96)}
def decode(b, size):
    im = Image.open(io.BytesIO(b))
    if size: im.draft('RGB', size)
    im.load()
res = {k: [] for k in scales}
for r in range(rounds):
    for k, size in scales.items():
        t0 = time.process_time()
        for i in range(4):
            for b in data: decode(b, size)
        res[k].append((time.process_time() - t0) * 1000 / (4 * len(data)))
print(f'  Pillow {Image.__version__}, libjpeg API {features.version("jpg")}, libjpeg-turbo: {features.check_feature("libjpeg_turbo")}')
for k, v in res.items():
    v.sort()
    print(f'  Pillow -scale {k:4} {v[len(v) // 2]:.2f} ms/img CPU')
`;

// CPU seconds of the children that have ended (utime + stime of this process's waited-for children).
const childrenCpuMs = () => {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(f[13]) + Number(f[14])) * 1000) / 100;
};

const names = Object.keys(variants);
const results = Object.fromEntries(names.map((n) => [n, { wall: [], cpu: [] }]));
console.log(`decode: ${images.length} golden JPEGs, ${rounds} rounds, load ${loadAverage().join(' ')}`);
for (let r = 0; r < rounds; r++) {
  for (const name of [...names.slice(r % names.length), ...names.slice(0, r % names.length)]) {
    const t0 = performance.now();
    const c0 = process.cpuUsage();
    const k0 = childrenCpuMs();
    for (let i = 0; i < 4; i++) for (const b of images) await variants[name](b);
    const cpu = process.cpuUsage(c0);
    const n = 4 * images.length;
    results[name].wall.push((performance.now() - t0) / n);
    results[name].cpu.push(((cpu.user + cpu.system) / 1000 + childrenCpuMs() - k0) / n);
  }
}
for (const name of names) console.log(`  ${name.padEnd(44)} ${round(median(results[name].wall), 2)} ms/img wall, ${round(median(results[name].cpu), 2)} ms/img CPU`);
if (a.pil) {
  const files = loadImages().filter((i) => i.file.endsWith('.jpg')).map((i) => i.file);
  process.stdout.write(execFileSync('/usr/bin/python3', ['-c', PIL, ...files, String(rounds)], { encoding: 'utf8' }));
}
if (a.djpeg) {
  const base = median(results['djpeg start-up (8×8 JPEG)'].cpu);
  for (const scale of ['1/1', '1/2', '1/4', '1/8']) console.log(`  djpeg -scale ${scale} less start-up: ${round(median(results[`djpeg -scale ${scale}`].cpu) - base, 2)} ms/img CPU`);
}
console.log(`load ${loadAverage().join(' ')}`);
