// The evaluation protocol against the vectors the Python side checks too
// (test/fixtures/golden-vectors.json, experiments/tests/test_golden_vectors.py).
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { SegmentationScorer } from './score.js';
import { goldenSetDigest } from './set.js';

const REPO = fileURLToPath(new URL('../../../../', import.meta.url));

interface Vectors {
  digests: { dir: string; sha256: string }[];
  scores: { name: string; classes: number; images: { truth: number[]; predicted: number[] }[]; iou: (number | null)[]; miou: number; pixel_accuracy: number }[];
}

const vectors = JSON.parse(readFileSync(path.join(REPO, 'test', 'fixtures', 'golden-vectors.json'), 'utf8')) as Vectors;

describe('golden vectors', () => {
  it.each(vectors.digests)('digest of $dir', async ({ dir, sha256 }) => {
    expect(await goldenSetDigest(path.join(REPO, dir))).toBe(sha256);
  });

  it.each(vectors.scores)('$name', (v) => {
    const scorer = new SegmentationScorer(v.classes);
    for (const [i, img] of v.images.entries()) {
      const mask = (pixels: number[]) => ({ width: pixels.length, height: 1, pixels: Uint8Array.from(pixels) });
      scorer.add(mask(img.predicted), mask(img.truth), { truth: `truth ${i}`, image: `image ${i}` });
    }
    const s = scorer.scores();
    expect(s.iou.length).toBe(v.iou.length);
    v.iou.forEach((iou, k) => (iou === null ? expect(s.iou[k]).toBeNull() : expect(s.iou[k]).toBeCloseTo(iou, 12)));
    expect(s.miou).toBeCloseTo(v.miou, 12);
    expect(s.pixelAccuracy).toBeCloseTo(v.pixel_accuracy, 12);
  });
});
