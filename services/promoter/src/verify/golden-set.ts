// The golden set of a model: `<root>/<model>/golden/{images,masks}/`, images and masks paired by
// base name (facade-001.jpg ↔ facade-001.png). Its identity is the digest experiments/golden.py
// computes: sha256 over the sorted (relative path, sha256 of the file) pairs of every file under
// the golden directory, each written as `<posix path>\0<hex digest>\n`.
import { createHash } from 'node:crypto';
import { readFile, readdir } from 'node:fs/promises';
import path from 'node:path';
import { decodePngMask, type MaskImage } from './png-mask.js';

export interface GoldenItem {
  readonly name: string;
  readonly image: Uint8Array;
  readonly mask: MaskImage;
}

export interface GoldenSet {
  readonly dir: string;
  readonly sha256: string;
  readonly items: readonly GoldenItem[];
}

async function listFiles(root: string, rel = ''): Promise<string[]> {
  const entries = await readdir(path.join(root, rel), { withFileTypes: true });
  const out: string[] = [];
  for (const e of entries) {
    const child = rel ? `${rel}/${e.name}` : e.name;
    if (e.isDirectory()) out.push(...(await listFiles(root, child)));
    else if (e.isFile()) out.push(child);
  }
  return out;
}

/** Python sorts pathlib paths part by part; compare the same way. */
function comparePaths(a: string, b: string): number {
  const pa = a.split('/');
  const pb = b.split('/');
  for (let i = 0; i < Math.min(pa.length, pb.length); i++) {
    const x = pa[i] as string;
    const y = pb[i] as string;
    if (x !== y) return x < y ? -1 : 1;
  }
  return pa.length - pb.length;
}

/** The golden set's identity (same value as experiments/golden.py `digest`). */
export async function goldenDigest(dir: string): Promise<string> {
  const files = (await listFiles(dir)).sort(comparePaths);
  const h = createHash('sha256');
  for (const rel of files) {
    const fileDigest = createHash('sha256').update(await readFile(path.join(dir, rel))).digest('hex');
    h.update(`${rel}\0${fileDigest}\n`);
  }
  return h.digest('hex');
}

const stem = (file: string): string => file.replace(/\.[^.]+$/, '');

/** Loads images (encoded bytes, sent as they are) and decoded masks; throws when unpaired. */
export async function loadGoldenSet(dir: string): Promise<GoldenSet> {
  const images = (await readdir(path.join(dir, 'images'))).filter((f) => !f.startsWith('.')).sort();
  const masks = new Map((await readdir(path.join(dir, 'masks'))).filter((f) => f.endsWith('.png')).map((f) => [stem(f), f]));
  if (images.length === 0) throw new Error(`${dir}/images is empty`);
  const items: GoldenItem[] = [];
  for (const image of images) {
    const maskFile = masks.get(stem(image));
    if (!maskFile) throw new Error(`${dir}: image ${image} has no mask masks/${stem(image)}.png`);
    items.push({
      name: stem(image),
      image: new Uint8Array(await readFile(path.join(dir, 'images', image))),
      mask: decodePngMask(new Uint8Array(await readFile(path.join(dir, 'masks', maskFile))), `masks/${maskFile}`),
    });
  }
  return { dir, sha256: await goldenDigest(dir), items };
}
