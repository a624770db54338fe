// `segserve eval` on the tiny model and golden set (issue 3): the metrics, the golden-set
// digest shared with experiments/golden.py, JSON and table output, and errors that name the
// offending file. Also the library form the promoter can import.

import { describe, expect, it } from 'vitest';
import { copyFile, mkdir, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import sharp from 'sharp';
import { goldenSetDigest } from '@segserve/runtime';
import { spawnSegserve, tempDir } from '../helpers/process.js';
import { GOLDEN_TINY, MODELS } from './helpers.js';

interface EvalJson {
  model: string;
  version: string;
  golden: { sha256: string; images: number };
  classes: { name: string; iou: number | null }[];
  metrics: { miou: number; pixel_accuracy: number; latency_ms_p50: number; latency_ms_p95: number; peak_rss_mb: number };
}

async function runEval(args: string[]): Promise<{ code: number | null; stdout: string; output: string }> {
  const proc = spawnSegserve(['eval', ...args]);
  const code = await proc.exited;
  const output = proc.output();
  return { code, stdout: proc.lines().filter((l) => l.startsWith('{') || !l.startsWith('segserve eval:')).join('\n'), output };
}

async function copyGolden(to: string): Promise<void> {
  for (const sub of ['images', 'masks']) {
    await mkdir(path.join(to, sub), { recursive: true });
    for (const f of await readdir(path.join(GOLDEN_TINY, sub))) await copyFile(path.join(GOLDEN_TINY, sub, f), path.join(to, sub, f));
  }
}

describe('segserve eval', () => {
  it('reports per-class IoU, mIoU, pixel accuracy, latency and peak RSS as JSON', async () => {
    const r = await runEval(['--model', MODELS.seg, '--golden', GOLDEN_TINY, '--json']);
    expect(r.code, r.output).toBe(0);
    const report = JSON.parse(r.stdout.split('\n').find((l) => l.startsWith('{'))!) as EvalJson;
    expect([report.model, report.version, report.golden.images]).toEqual(['tiny-seg', '1', 6]);
    expect(report.classes.map((c) => c.name)).toEqual(['background', 'advertising']);
    // The tiny model is a red detector and the golden signs are red: it scores high, not perfect.
    expect(report.metrics.miou).toBeGreaterThan(0.9);
    expect(report.metrics.miou).toBeLessThan(1);
    expect(report.metrics.miou).toBeCloseTo((report.classes[0]!.iou! + report.classes[1]!.iou!) / 2, 12);
    expect(report.metrics.pixel_accuracy).toBeGreaterThan(0.95);
    expect(report.metrics.latency_ms_p95).toBeGreaterThanOrEqual(report.metrics.latency_ms_p50);
    expect(report.metrics.latency_ms_p50).toBeGreaterThan(0);
    expect(report.metrics.peak_rss_mb).toBeGreaterThan(20);
    expect(report.golden.sha256).toBe(await goldenSetDigest(GOLDEN_TINY));
  });

  it('is deterministic in its accuracy figures and agrees with the table output', async () => {
    const a = await runEval(['--model', MODELS.seg, '--golden', GOLDEN_TINY, '--json']);
    const t = await runEval(['--model', MODELS.seg, '--golden', GOLDEN_TINY]);
    expect(t.code, t.output).toBe(0);
    const report = JSON.parse(a.stdout.split('\n').find((l) => l.startsWith('{'))!) as EvalJson;
    expect(t.output).toMatch(new RegExp(`mIoU\\s+${(report.metrics.miou * 100).toFixed(2)}`));
    expect(t.output).toMatch(/latency\s+p50 [\d.]+ ms\s+p95 [\d.]+ ms/);
    expect(t.output).toMatch(/peak RSS\s+[\d.]+ MB/);
  });

  it('computes the golden-set digest exactly like experiments/golden.py', () => {
    const py = execFileSync('/usr/bin/python3', ['-c', [
      'import hashlib, sys',
      'from pathlib import Path',
      'root = Path(sys.argv[1]); h = hashlib.sha256()',
      'for p in sorted(q for q in root.rglob("*") if q.is_file()):',
      '    h.update(p.relative_to(root).as_posix().encode() + b"\\0" + hashlib.sha256(p.read_bytes()).hexdigest().encode() + b"\\n")',
      'print(h.hexdigest())',
    ].join('\n'), GOLDEN_TINY], { encoding: 'utf8' }).trim();
    return expect(goldenSetDigest(GOLDEN_TINY)).resolves.toBe(py);
  });

  it.each<[string, (dir: string) => Promise<string>, RegExp]>([
    [
      'a missing mask',
      async (dir) => {
        await rm(path.join(dir, 'masks', 'facade-03.png'));
        return path.join(dir, 'images', 'facade-03.png');
      },
      /facade-03\.png: no mask .*masks\/facade-03\.png/,
    ],
    [
      'a mask of the wrong size',
      async (dir) => {
        const file = path.join(dir, 'masks', 'facade-02.png');
        await writeFile(file, await sharp(Buffer.alloc(100), { raw: { width: 10, height: 10, channels: 1 } }).toColourspace('b-w').png().toBuffer());
        return file;
      },
      /masks\/facade-02\.png: mask is 10×10 but the image .*facade-02\.png is 97×65/,
    ],
    [
      'an image that is not an image',
      async (dir) => {
        const file = path.join(dir, 'images', 'facade-04.png');
        await writeFile(file, 'not really a png');
        return file;
      },
      /images\/facade-04\.png: not a jpeg, png, webp image/,
    ],
    [
      'a colour mask',
      async (dir) => {
        const file = path.join(dir, 'masks', 'facade-05.png');
        await writeFile(file, await sharp({ create: { width: 64, height: 48, channels: 3, background: '#010101' } }).png().toBuffer());
        return file;
      },
      /masks\/facade-05\.png: a mask must be a single-channel PNG of class indices \(grey or palette\), not RGB/,
    ],
  ])('fails clearly on %s, naming the file', async (_name, breakIt, message) => {
    await using tmp = await tempDir('segserve-golden-');
    await copyGolden(tmp.path);
    await breakIt(tmp.path);
    const r = await runEval(['--model', MODELS.seg, '--golden', tmp.path, '--json']);
    expect(r.code).toBe(1);
    expect(r.output).toMatch(message);
  });

  it('reads palette masks by their indices: the same figures as with the grey masks', async () => {
    await using tmp = await tempDir('segserve-golden-');
    await copyGolden(tmp.path);
    // PIL writes each mask as a palette PNG whose indices are the classes (colours: black, red).
    execFileSync('/usr/bin/python3', ['-c', [
      'import sys, pathlib',
      'from PIL import Image',
      'for p in pathlib.Path(sys.argv[1]).glob("*.png"):',
      '    im = Image.open(p); pal = Image.frombytes("P", im.size, im.tobytes()); pal.putpalette([0, 0, 0, 255, 0, 0]); pal.save(p)',
    ].join('\n'), path.join(tmp.path, 'masks')]);
    const grey = await runEval(['--model', MODELS.seg, '--golden', GOLDEN_TINY, '--json']);
    const palette = await runEval(['--model', MODELS.seg, '--golden', tmp.path, '--json']);
    expect(palette.code, palette.output).toBe(0);
    const miou = (r: { stdout: string }): number => (JSON.parse(r.stdout.split('\n').find((l) => l.startsWith('{'))!) as EvalJson).metrics.miou;
    expect(miou(palette)).toBe(miou(grey));
    expect((await readFile(path.join(tmp.path, 'masks', 'facade-00.png')))[25]).toBe(3); // colour type 3: palette
  });

  it('--dump writes the predicted masks as served, one per golden image', async () => {
    await using tmp = await tempDir('segserve-dump-');
    const r = await runEval(['--model', MODELS.seg, '--golden', GOLDEN_TINY, '--dump', tmp.path]);
    expect(r.code, r.output).toBe(0);
    const dumped = (await readdir(tmp.path)).sort();
    expect(dumped).toEqual((await readdir(path.join(GOLDEN_TINY, 'masks'))).sort());
    const meta = await sharp(await readFile(path.join(tmp.path, dumped[0]!))).metadata();
    expect([meta.format, meta.channels]).toEqual(['png', 1]);
  });

  it.each<[string[], RegExp, number]>([
    [['--model', MODELS.seg], /--golden <dir> is required/, 2],
    [['--golden', GOLDEN_TINY], /no model: set SEGSERVE_MODEL_DIR \(or --model <dir>\)/, 2],
    [['--model', MODELS.badsha, '--golden', GOLDEN_TINY], /model\.onnx has sha256 [0-9a-f]{64} but model\.json says 0{64}/, 1],
  ])('rejects %j', async (args, message, code) => {
    const r = await runEval(args);
    expect(r.code).toBe(code);
    expect(r.output).toMatch(message);
  });
});
