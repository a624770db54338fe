// A stand-alone copy of the `segserve eval` protocol (services/inference/src/eval.ts), used by
// the experiments pipeline when the CLI is not built and to dump predicted masks for the contact
// sheet: sharp decodes (auto-orient) and resizes (fit "fill", kernel "linear"), pixels × scale
// then (x − mean) / std into an NCHW float32 tensor, onnxruntime-node (arena and memory pattern
// off as in docs/architecture.md#memory-and-admission-by-cost) runs it, argmax over the class logits, nearest-neighbour (pixel
// centres) back to the image's size, PNG-encoded like a served mask; one confusion matrix over
// all golden pixels → IoU per class, mIoU. Latency is per image from the encoded bytes in memory
// to the PNG mask; percentiles interpolate like eval's; peak RSS is VmHWM at the end.
//
//   node experiments/measure.mjs --model models/facade-ads/2 --golden models/facade-ads/golden [--passes 3] [--threads 1] [--dump <dir>]
//
// --dump writes the predicted full-size masks (PNG, 0/1) of the first pass, for the contact sheet.
//
// Prints one JSON object. This is a measuring tool for the experiments pipeline; `segserve eval`
// (services/inference) is the product's implementation of the same protocol.
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import ort from 'onnxruntime-node';
import sharp from 'sharp';

function args(argv) {
  const out = { passes: 3, threads: 1 };
  for (let i = 0; i < argv.length; i += 2) out[argv[i].replace(/^--/, '')] = argv[i + 1];
  if (!out.model || !out.golden) throw new Error('usage: measure.mjs --model <dir> --golden <dir> [--passes n] [--threads n]');
  return out;
}

function percentile(values, q) {
  const s = [...values].sort((a, b) => a - b);
  const pos = ((s.length - 1) * q) / 100;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return s[lo] + (s[hi] - s[lo]) * (pos - lo);
}

function peakRssMb() {
  try {
    const kb = /^VmHWM:\s+(\d+)\s+kB/m.exec(readFileSync('/proc/self/status', 'utf8'))?.[1];
    if (kb !== undefined) return Number(kb) / 1024;
  } catch {
    // not Linux
  }
  return process.resourceUsage().maxRSS / 1024;
}

const nearest = (d, src, dst) => Math.min(src - 1, Math.floor(((d + 0.5) * src) / dst));

async function main() {
  const a = args(process.argv.slice(2));
  sharp.cache(false);
  sharp.concurrency(1);
  const man = JSON.parse(readFileSync(path.join(a.model, 'model.json'), 'utf8'));
  const { height: H, width: W, mean, std, scale } = man.input;
  const session = await ort.InferenceSession.create(path.join(a.model, 'model.onnx'), {
    intraOpNumThreads: Number(a.threads),
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
    enableCpuMemArena: false,
    enableMemPattern: false,
  });
  const tables = [0, 1, 2].map((c) => Float32Array.from({ length: 256 }, (_, v) => (v * scale - mean[c]) / std[c]));
  const names = readdirSync(path.join(a.golden, 'images')).filter((f) => /\.(jpe?g|png|webp)$/i.test(f)).sort();
  const images = names.map((f) => readFileSync(path.join(a.golden, 'images', f)));
  const truths = [];
  for (const f of names) {
    const m = path.join(a.golden, 'masks', f.replace(/\.[^.]+$/, '.png'));
    const { data, info } = await sharp(readFileSync(m)).raw().toBuffer({ resolveWithObject: true });
    const plane = new Uint8Array(info.width * info.height);
    for (let i = 0; i < plane.length; i++) plane[i] = data[i * info.channels];
    truths.push({ plane, width: info.width, height: info.height });
  }
  const C = man.classes.length;
  const confusion = new Float64Array(C * C);
  const total = [];
  const infer = [];

  async function segment(bytes) {
    const t0 = performance.now();
    const meta = await sharp(bytes, { failOn: 'warning' }).metadata();
    const { data } = await sharp(bytes, { failOn: 'warning', sequentialRead: true }).autoOrient().resize(W, H, { fit: 'fill', kernel: 'linear' })
      .removeAlpha().toColourspace('srgb').raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
    const plane = W * H;
    const x = new Float32Array(3 * plane);
    for (let i = 0, p = 0; i < plane; i++, p += 3) {
      x[i] = tables[0][data[p]];
      x[plane + i] = tables[1][data[p + 1]];
      x[2 * plane + i] = tables[2][data[p + 2]];
    }
    const t1 = performance.now();
    const out = await session.run({ [man.input.name]: new ort.Tensor('float32', x, [1, 3, H, W]) });
    const t2 = performance.now();
    const logits = out[man.output.name].data;
    const small = new Uint8Array(plane);
    for (let i = 0; i < plane; i++) {
      let best = logits[i];
      let arg = 0;
      for (let c = 1; c < C; c++) if (logits[c * plane + i] > best) { best = logits[c * plane + i]; arg = c; }
      small[i] = arg;
    }
    const mw = meta.autoOrient?.width ?? meta.width;
    const mh = meta.autoOrient?.height ?? meta.height;
    const mask = new Uint8Array(mw * mh);
    const cols = Int32Array.from({ length: mw }, (_, xx) => nearest(xx, W, mw));
    for (let y = 0; y < mh; y++) {
      const sy = nearest(y, H, mh) * W;
      for (let xx = 0; xx < mw; xx++) mask[y * mw + xx] = small[sy + cols[xx]];
    }
    const png = await sharp(Buffer.from(mask.buffer), { raw: { width: mw, height: mh, channels: 1 } })
      .toColourspace('b-w').png({ compressionLevel: 2, adaptiveFiltering: false }).toBuffer();
    const t3 = performance.now();
    return { mask, png, width: mw, height: mh, total: t3 - t0, infer: t2 - t1 };
  }

  await segment(images[0]); // warm-up, not timed
  for (let pass = 0; pass < Number(a.passes); pass++) {
    for (let i = 0; i < images.length; i++) {
      const r = await segment(images[i]);
      total.push(r.total);
      infer.push(r.infer);
      if (pass > 0) continue;
      const t = truths[i];
      if (t.width !== r.width || t.height !== r.height) throw new Error(`${names[i]}: mask ${t.width}x${t.height} differs from image ${r.width}x${r.height}`);
      for (let p = 0; p < r.mask.length; p++) confusion[t.plane[p] * C + r.mask[p]]++;
      if (a.dump) {
        mkdirSync(a.dump, { recursive: true });
        writeFileSync(path.join(a.dump, names[i].replace(/\.[^.]+$/, '.png')), r.png);
      }
    }
  }
  const iou = [];
  let correct = 0;
  let pixels = 0;
  for (let k = 0; k < C; k++) {
    let rowK = 0;
    let colK = 0;
    for (let j = 0; j < C; j++) {
      rowK += confusion[k * C + j];
      colK += confusion[j * C + k];
      pixels += confusion[k * C + j];
    }
    const tp = confusion[k * C + k];
    correct += tp;
    iou.push(rowK + colK - tp > 0 ? tp / (rowK + colK - tp) : null);
  }
  const defined = iou.filter((v) => v !== null);
  const r4 = (v) => Math.round(v * 10000) / 10000;
  const r1 = (v) => Math.round(v * 10) / 10;
  console.log(JSON.stringify({
    miou: r4(defined.reduce((s, v) => s + v, 0) / defined.length),
    iou: iou.map((v) => (v === null ? null : r4(v))),
    pixel_accuracy: r4(correct / pixels),
    latency_ms_p50: r1(percentile(total, 50)),
    latency_ms_p95: r1(percentile(total, 95)),
    infer_ms_p50: r1(percentile(infer, 50)),
    infer_ms_p95: r1(percentile(infer, 95)),
    peak_rss_mb: r1(peakRssMb()),
    images: images.length,
    samples: total.length,
    threads: Number(a.threads),
    runtime: `onnxruntime-node ${ort.env.versions?.common ?? ''}`.trim(),
  }));
}

main().catch((err) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
