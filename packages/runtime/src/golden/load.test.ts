import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { goldenSetDigest, listGoldenSet, loadGoldenSet } from './set.js';

const TINY = fileURLToPath(new URL('../../../../test/fixtures/golden-tiny', import.meta.url));

describe('golden set', () => {
  it('has the digest experiments/golden.py computes (cross-language contract)', async () => {
    // /usr/bin/python3 -c 'from experiments.golden import digest; from pathlib import Path; print(digest(Path("test/fixtures/golden-tiny")))'
    expect(await goldenSetDigest(TINY)).toBe('67a356c1efe82a70dd3627d9b51becff1a44258484bafa763ce72935d7237a44');
  });

  it('pairs images and masks by base name (facade-01.jpg ↔ facade-01.png)', async () => {
    const set = await loadGoldenSet(TINY);
    expect(set.items.map((i) => i.name)).toEqual(['facade-00', 'facade-01', 'facade-02', 'facade-03', 'facade-04', 'facade-05']);
    expect(set.items[1]?.image[0]).toBe(0xff); // the JPEG, sent as it is
    expect(set.items[1]?.mask.width).toBeGreaterThan(0);
    expect(set.sha256).toBe(await goldenSetDigest(TINY));
    expect((await listGoldenSet(TINY)).map((i) => i.name)).toEqual(set.items.map((i) => i.name));
  });
});
