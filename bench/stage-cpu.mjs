// CPU time of the pipeline's pure stages at one size, per call: the tensor build (toNchw), the
// argmax (classMap), the class statistics and the mask PNG, on the golden set's photographs
// (decoded to the size) and its label masks (as the class map). With --before <checkout>, the same
// functions of another tree's build run interleaved with this tree's, call by call, so that
// a before/after on a busy machine compares like with like. CPU time (process.cpuUsage), not wall.
//
//   node bench/stage-cpu.mjs [--size 1152x768] [--rounds 20] [--before /path/to/other/checkout]
import path from 'node:path';
import { readdirSync } from 'node:fs';
import sharp from 'sharp';
import { args } from './lib/args.mjs';
import { loadAverage } from './lib/procs.mjs';
import { GOLDEN_IMAGES, loadImages } from './lib/images.mjs';
import { median, round } from './lib/stats.mjs';
import { describeTrees, treesOf, turnAt } from './lib/trees.mjs';

const a = args(process.argv.slice(2));
const [W, H] = (a.size ?? '1152x768').split('x').map(Number);
const rounds = Number(a.rounds ?? 20);
const trees = treesOf(a.before);

async function stagesOf(root) {
  const dist = path.join(root, 'services', 'inference', 'dist', 'domain');
  const tensor = await import(path.join(dist, 'tensor.js'));
  const mask = await import(path.join(dist, 'mask.js'));
  const png = await import(path.join(dist, 'mask-png.js'));
  return { tensor, mask, png };
}

const images = loadImages().slice(0, 4);
const rgbs = await Promise.all(images.map((i) => sharp(i.bytes).resize(W, H, { fit: 'fill' }).removeAlpha().raw().toBuffer()));
const maskDir = path.join(path.dirname(GOLDEN_IMAGES), 'masks');
const maskFiles = readdirSync(maskDir).sort().slice(0, 4);
const masks = await Promise.all(maskFiles.map((f) => sharp(path.join(maskDir, f)).resize(W, H, { fit: 'fill', kernel: 'nearest' }).extractChannel(0).raw().toBuffer()));
// Two-class logits whose argmax is the label mask, in the model's output layout.
const logits = masks.map((m) => {
  const out = new Float32Array(2 * W * H);
  for (let i = 0; i < m.length; i++) out[W * H + i] = m[i] > 0 ? 1 : -1;
  return out;
});
const classMaps = masks.map((m) => Uint8Array.from(m, (v) => (v > 0 ? 1 : 0)));

const norm = { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225], scale: 1 / 255, channelOrder: 'RGB' };
const loaded = {};
for (const [name, root] of Object.entries(trees)) loaded[name] = await stagesOf(root);

// The tensor build's state, made once per tree as the worker does: TensorBuilder (WebAssembly) since
// issue 15's sixth round, toNchw (JS) into a reused tensor before it.
const builders = Object.fromEntries(
  Object.entries(loaded).map(([tree, s]) => {
    if (s.tensor.TensorBuilder) return [tree, new s.tensor.TensorBuilder(W, H, norm)];
    const tables = s.tensor.channelTables(norm);
    const tensor = new Float32Array(3 * W * H);
    return [tree, { from: (rgb) => s.tensor.toNchw(rgb, W, H, tables, 'RGB', tensor) }];
  }),
);

const work = (tree, k) => {
  const s = loaded[tree];
  return {
    toNchw: () => builders[tree].from(rgbs[k]),
    classMap: () => s.mask.classMap(logits[k], 2, W * H, { kind: 'logits', threshold: 0.5 }),
    classStats: () => s.mask.classStatsResized(classMaps[k], W, H, W, H, ['background', 'advertising']),
    maskPng: () => s.png.encodeMaskPng(classMaps[k], W, H, W, H),
  };
};
const cpuMs = (fn) => {
  const t0 = process.cpuUsage();
  fn();
  const d = process.cpuUsage(t0);
  return (d.user + d.system) / 1000;
};

console.log(`stage-cpu ${W}×${H}, ${rounds} rounds, trees ${describeTrees(trees)}, load ${loadAverage().join(' ')}`);
const samples = {};
for (let r = -3; r < rounds; r++) {
  const k = ((r % 4) + 4) % 4;
  for (const tree of turnAt(Object.keys(loaded), r + 3)) {
    for (const [stage, fn] of Object.entries(work(tree, k))) {
      const ms = cpuMs(fn);
      if (r < 0) continue; // warm-up (JIT)
      (samples[`${stage} ${tree}`] ??= []).push(ms);
    }
  }
}
for (const stage of ['toNchw', 'classMap', 'classStats', 'maskPng']) {
  const line = ['after', 'before'].filter((tree) => tree in loaded).map((tree) => `${tree} ${round(median(samples[`${stage} ${tree}`]), 2)}`).join(', ');
  console.log(`  ${stage.padEnd(10)} CPU ms per call, median: ${line}`);
}
console.log(`load ${loadAverage().join(' ')}`);
