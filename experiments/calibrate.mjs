// Activation statistics for static int8 quantisation (experiments/quantize.py), collected by running
// the float32 ONNX model in onnxruntime-node — the runtime that will run the int8 model — with the
// tensors to quantise added as graph outputs (quantize.py writes that model).
//
//   node experiments/calibrate.mjs --model <calib.onnx> --inputs <images.f32> --count N --bins 2048 --out <stats.json>
//
// <images.f32>: N preprocessed inputs (float32 NCHW, the model's input shape, back to back).
// Two passes over the images: the range of every tensor, then a histogram of its values over that
// range. Prints nothing; writes {tensor: {min, max, bins: [counts], zeros, positive}} to --out
// (zeros / positive: how many values were exactly 0 / above 0). --optimize 1 runs the graph as
// served (fused int8 kernels) instead of node by node: for measuring a quantised model's outputs.
import { readFileSync, writeFileSync } from 'node:fs';
import ort from 'onnxruntime-node';

function args(argv) {
  const out = { bins: '2048' };
  for (let i = 0; i < argv.length; i += 2) out[argv[i].replace(/^--/, '')] = argv[i + 1];
  for (const k of ['model', 'inputs', 'count', 'out']) if (!out[k]) throw new Error(`--${k} is required`);
  return out;
}

async function main() {
  const a = args(process.argv.slice(2));
  const session = await ort.InferenceSession.create(a.model, {
    intraOpNumThreads: Number(process.env.CALIBRATE_THREADS ?? 1),
    // every tensor as in the graph (no fusion hides one), unless the outputs are what is measured
    graphOptimizationLevel: a.optimize === '1' ? 'all' : 'disabled',
    enableCpuMemArena: false,
  });
  const input = session.inputNames[0];
  const meta = session.inputMetadata?.[0];
  const dims = meta && 'shape' in meta ? meta.shape.map(Number) : undefined;
  const raw = readFileSync(a.inputs);
  const n = Number(a.count);
  const per = raw.byteLength / 4 / n;
  if (!Number.isInteger(per)) throw new Error(`${a.inputs}: ${raw.byteLength} bytes is not ${n} float32 inputs`);
  const shape = dims && dims.every((d) => d > 0) ? dims : [1, 3, ...a.shape.split(',').map(Number)];
  const all = new Float32Array(raw.buffer, raw.byteOffset, raw.byteLength / 4);
  const names = session.outputNames;
  const stats = Object.fromEntries(names.map((k) => [k, { min: Infinity, max: -Infinity, bins: new Float64Array(Number(a.bins)), zeros: 0, positive: 0 }]));
  const feed = (i) => ({ [input]: new ort.Tensor('float32', all.subarray(i * per, (i + 1) * per), shape) });
  for (let i = 0; i < n; i++) {
    const out = await session.run(feed(i));
    for (const k of names) {
      const d = out[k].data;
      const s = stats[k];
      for (let j = 0; j < d.length; j++) {
        const v = d[j];
        if (v < s.min) s.min = v;
        if (v > s.max) s.max = v;
        if (v === 0) s.zeros++;
        else if (v > 0) s.positive++;
      }
    }
  }
  for (let i = 0; i < n; i++) {
    const out = await session.run(feed(i));
    for (const k of names) {
      const d = out[k].data;
      const s = stats[k];
      const nb = s.bins.length;
      const w = s.max - s.min;
      if (!(w > 0)) {
        s.bins[0] += d.length;
        continue;
      }
      const f = nb / w;
      for (let j = 0; j < d.length; j++) {
        let b = Math.floor((d[j] - s.min) * f);
        if (b >= nb) b = nb - 1;
        s.bins[b]++;
      }
    }
  }
  const json = Object.fromEntries(Object.entries(stats).map(([k, s]) => [k, { min: s.min, max: s.max, bins: Array.from(s.bins), zeros: s.zeros, positive: s.positive }]));
  writeFileSync(a.out, JSON.stringify(json));
}

main().catch((err) => {
  console.error(err instanceof Error ? err.stack : err);
  process.exit(1);
});
