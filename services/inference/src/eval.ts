// `segserve eval`: the golden set through the serving pipeline in this process (issue 3), so
// that serving and evaluation cannot disagree. Per-class IoU, mIoU, pixel accuracy, latency
// p50/p95 of the whole pipeline (decode → PNG), and the process's peak RSS.

import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { decodePngMask, goldenSetDigest, listGoldenSet, percentile, readMask, SegmentationScorer } from '@segserve/runtime';
import { StageTimer, type Pipeline } from './pipeline.js';

export interface EvalReport {
  readonly model: string;
  readonly version: string;
  readonly sha256: string;
  readonly golden: { readonly dir: string; readonly sha256: string; readonly images: number };
  readonly classes: readonly { readonly name: string; readonly iou: number | null }[];
  /** Names as in model.json `metrics` and ExperimentResult (docs/architecture.md#model-package, #nats). */
  readonly metrics: {
    readonly miou: number;
    readonly pixel_accuracy: number;
    readonly latency_ms_p50: number;
    readonly latency_ms_p95: number;
    readonly peak_rss_mb: number;
  };
  readonly passes: number;
}

/** Peak resident set of this process (VmHWM), in MiB; includes onnxruntime's worker threads. */
export async function peakRssMb(): Promise<number> {
  try {
    const status = await readFile('/proc/self/status', 'utf8');
    const kb = /^VmHWM:\s+(\d+)\s+kB/m.exec(status)?.[1];
    if (kb !== undefined) return Number(kb) / 1024;
  } catch {
    // Not Linux: fall back to getrusage.
  }
  return process.resourceUsage().maxRSS / 1024;
}

/** One image through the pipeline as served (PNG mask); errors name the file. */
async function runOne(pipeline: Pipeline, file: string, image: Buffer): Promise<{ mask: Buffer; ms: number }> {
  const timer = new StageTimer();
  try {
    const result = await pipeline.segment(image, pipeline.inspect(image), 'PNG', timer);
    return { mask: result.mask, ms: timer.finish().total ?? 0 };
  } catch (err) {
    throw new Error(`${file}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
}

export interface EvaluateOptions {
  readonly pipeline: Pipeline;
  readonly goldenDir: string;
  /** Passes over the set for latency; accuracy comes from the first. */
  readonly passes?: number;
  /** Writes each predicted mask (PNG, as served) of the first pass to <dumpDir>/<name>.png. */
  readonly dumpDir?: string;
}

export async function evaluate(options: EvaluateOptions): Promise<EvalReport> {
  const { pipeline, goldenDir } = options;
  const passes = Math.max(1, options.passes ?? 1);
  const model = pipeline.model;
  const items = await listGoldenSet(goldenDir);
  const scorer = new SegmentationScorer(model.manifest.classes.length);
  const latencies: number[] = [];
  // One untimed run first, like the warm-up before SERVING: the first decode pays one-off costs.
  if (options.dumpDir) await mkdir(options.dumpDir, { recursive: true });
  const first = items[0];
  if (first) await runOne(pipeline, first.imagePath, await readFile(first.imagePath));
  for (let pass = 0; pass < passes; pass++) {
    for (const item of items) {
      const { mask, ms } = await runOne(pipeline, item.imagePath, await readFile(item.imagePath));
      latencies.push(ms);
      if (pass > 0) continue;
      if (options.dumpDir) await writeFile(path.join(options.dumpDir, `${item.name}.png`), mask);
      scorer.add(decodePngMask(mask, `${item.imagePath} (predicted mask)`), await readMask(item.maskPath), { truth: item.maskPath, image: item.imagePath });
    }
  }
  const s = scorer.scores();
  return {
    model: model.name,
    version: model.version,
    sha256: model.sha256,
    golden: { dir: goldenDir, sha256: await goldenSetDigest(goldenDir), images: items.length },
    classes: model.manifest.classes.map((name, i) => ({ name, iou: s.iou[i] ?? null })),
    metrics: {
      miou: s.miou,
      pixel_accuracy: s.pixelAccuracy,
      latency_ms_p50: percentile(latencies, 50),
      latency_ms_p95: percentile(latencies, 95),
      peak_rss_mb: await peakRssMb(),
    },
    passes,
  };
}

export function formatReport(r: EvalReport): string {
  const pct = (v: number | null): string => (v === null ? '   n/a' : `${(v * 100).toFixed(2).padStart(6)}`);
  const width = Math.max(12, ...r.classes.map((c) => c.name.length));
  const lines = [
    `model     ${r.model}/${r.version}  sha256 ${r.sha256.slice(0, 12)}…`,
    `golden    ${r.golden.dir}  (${r.golden.images} images, sha256 ${r.golden.sha256.slice(0, 12)}…)`,
    '',
    `${'class'.padEnd(width)}  IoU %`,
    ...r.classes.map((c) => `${c.name.padEnd(width)}  ${pct(c.iou)}`),
    `${'mIoU'.padEnd(width)}  ${pct(r.metrics.miou)}`,
    `${'pixel acc.'.padEnd(width)}  ${pct(r.metrics.pixel_accuracy)}`,
    '',
    `latency   p50 ${r.metrics.latency_ms_p50.toFixed(1)} ms   p95 ${r.metrics.latency_ms_p95.toFixed(1)} ms   (${r.passes} pass${r.passes > 1 ? 'es' : ''})`,
    `peak RSS  ${r.metrics.peak_rss_mb.toFixed(1)} MB`,
  ];
  return `${lines.join('\n')}\n`;
}
