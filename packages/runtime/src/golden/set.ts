// A golden set on disk: images/<name>.<jpg|png|webp> with masks/<name>.png, paired by base name
// (facade-001.jpg ↔ facade-001.png). Its identity is the sha256 over its sorted (relative path,
// file sha256) pairs, each written as `<posix path>\0<hex digest>\n` — the definition
// experiments/golden.py computes too, so a result's golden.sha256 can be checked on either side.
// `segserve eval`, the promoter's verifier, `segserve publish` and the experiments all read golden
// sets through this module.
import { createHash } from 'node:crypto';
import { readFile, readdir } from 'node:fs/promises';
import path from 'node:path';
import { decodePngMask, type MaskImage } from './png-mask.js';

export interface GoldenItem {
  readonly name: string;
  readonly imagePath: string;
  readonly maskPath: string;
}

/** A golden set in memory: encoded images (sent as they are) and decoded masks. */
export interface LoadedGoldenItem {
  readonly name: string;
  readonly image: Uint8Array;
  readonly mask: MaskImage;
}

export interface GoldenSet {
  readonly dir: string;
  readonly sha256: string;
  readonly items: readonly LoadedGoldenItem[];
}

const IMAGE_EXT = /\.(jpe?g|png|webp)$/i;

async function filesUnder(root: string, rel = ''): Promise<string[]> {
  const entries = await readdir(path.join(root, rel), { withFileTypes: true });
  const out: string[] = [];
  for (const e of entries) {
    const r = rel === '' ? e.name : `${rel}/${e.name}`;
    if (e.isDirectory()) out.push(...(await filesUnder(root, r)));
    else if (e.isFile()) out.push(r);
  }
  return out;
}

/** Orders like Python's sorted() over pathlib paths: segment by segment. */
export function comparePaths(a: string, b: string): number {
  const pa = a.split('/');
  const pb = b.split('/');
  for (let i = 0; i < Math.min(pa.length, pb.length); i++) {
    if (pa[i] !== pb[i]) return pa[i]! < pb[i]! ? -1 : 1;
  }
  return pa.length - pb.length;
}

/** The golden set's identity: sha256 of "path\0sha256hex\n" for every file under `dir`, in path order. */
export async function goldenSetDigest(dir: string): Promise<string> {
  const files = (await filesUnder(dir)).sort(comparePaths);
  const h = createHash('sha256');
  for (const f of files) {
    const digest = createHash('sha256').update(await readFile(path.join(dir, f))).digest('hex');
    h.update(`${f}\0${digest}\n`);
  }
  return h.digest('hex');
}

/** Image/mask pairs, sorted by name; a missing mask is an error naming the image. */
export async function listGoldenSet(dir: string): Promise<GoldenItem[]> {
  const imagesDir = path.join(dir, 'images');
  const masksDir = path.join(dir, 'masks');
  let images: string[];
  try {
    images = (await readdir(imagesDir)).filter((f) => IMAGE_EXT.test(f)).sort();
  } catch {
    throw new Error(`${imagesDir}: no such directory (a golden set has images/ and masks/)`);
  }
  if (images.length === 0) throw new Error(`${imagesDir}: no .jpg, .png or .webp images`);
  const masks = new Set(await readdir(masksDir).catch(() => [] as string[]));
  return images.map((f) => {
    const name = f.replace(IMAGE_EXT, '');
    const mask = `${name}.png`;
    if (!masks.has(mask)) throw new Error(`${path.join(imagesDir, f)}: no mask ${path.join(masksDir, mask)}`);
    return { name, imagePath: path.join(imagesDir, f), maskPath: path.join(masksDir, mask) };
  });
}

/** Reads a mask file; errors name the file. */
export async function readMask(file: string): Promise<MaskImage> {
  return decodePngMask(new Uint8Array(await readFile(file)), file);
}

/** The whole set in memory with its digest (the verifier sends every image several times). */
export async function loadGoldenSet(dir: string): Promise<GoldenSet> {
  const items: LoadedGoldenItem[] = [];
  for (const item of await listGoldenSet(dir)) {
    items.push({ name: item.name, image: new Uint8Array(await readFile(item.imagePath)), mask: await readMask(item.maskPath) });
  }
  return { dir, sha256: await goldenSetDigest(dir), items };
}
