// `?format=color`: a class-index mask as an 8-bit palette PNG that people can look at, with
// class 0 (background) transparent so it can lie over the photo. Nothing is decoded or
// compressed: the upstream's mask PNG (8-bit greyscale, values = class indices) has exactly the
// scanlines of an 8-bit palette PNG of the same indices, so its header is re-labelled and a
// palette added; the cost is a copy of a few kilobytes whatever the image's size.
import { PNG_SIGNATURE, pngChunk, pngHeader, readPngChunks } from '@segserve/runtime';

export type Rgb = readonly [number, number, number];

// Distinct, colour-blind-friendlier colours first (Okabe–Ito, then Tol's bright); beyond them a
// deterministic spread. Index 0 is background and transparent in the PNG.
const BASE_PALETTE: readonly Rgb[] = [
  [0, 0, 0],
  [230, 25, 75],
  [0, 114, 178],
  [230, 159, 0],
  [0, 158, 115],
  [204, 121, 167],
  [86, 180, 233],
  [213, 94, 0],
  [240, 228, 66],
  [102, 204, 238],
  [34, 136, 51],
  [170, 51, 119],
];

/** The display colour of class `index` (stable across requests, models and the upload page). */
export function classColor(index: number): Rgb {
  const base = BASE_PALETTE[index];
  if (base) return base;
  // Golden-angle hue walk: neighbouring indices get far-apart hues.
  const hue = (index * 137.508) % 360;
  return hslToRgb(hue, 0.65, 0.5);
}

export function hexColor(rgb: Rgb): string {
  return `#${rgb.map((c) => c.toString(16).padStart(2, '0')).join('')}`;
}

function hslToRgb(h: number, s: number, l: number): Rgb {
  const a = s * Math.min(l, 1 - l);
  const f = (n: number): number => {
    const k = (n + h / 30) % 12;
    return Math.round(255 * (l - a * Math.max(-1, Math.min(k - 3, 9 - k, 1))));
  };
  return [f(0), f(8), f(4)];
}

/** Every index a byte can hold has its colour, so any mask's indices are covered. */
const PLTE = pngChunk('PLTE', Uint8Array.from(Array.from({ length: 256 }, (_, i) => classColor(i)).flat()));
/** Index 0 transparent; entries beyond the tRNS data are opaque. */
const TRNS = pngChunk('tRNS', Uint8Array.of(0));

/**
 * Re-labels an 8-bit greyscale PNG of class indices (what the inference service answers for
 * mask_format PNG) as a palette PNG in the class colours. Throws RangeError for anything else
 * (another bit depth or colour type, interlacing, a broken file).
 */
export function paletteMaskPng(greyPng: Uint8Array): Buffer {
  const chunks = readPngChunks(greyPng);
  const ihdr = chunks[0];
  if (ihdr?.type !== 'IHDR' || ihdr.data.length !== 13) throw new RangeError('mask PNG does not start with IHDR');
  const view = new DataView(ihdr.data.buffer, ihdr.data.byteOffset, 13);
  const [depth, colourType, interlace] = [ihdr.data[8], ihdr.data[9], ihdr.data[12]];
  if (depth !== 8 || colourType !== 0 || interlace !== 0) {
    throw new RangeError(`mask PNG is bit depth ${depth}, colour type ${colourType}, interlace ${interlace}; expected an 8-bit greyscale, non-interlaced PNG`);
  }
  const rest = chunks.slice(1).filter((c) => c.type !== 'PLTE' && c.type !== 'tRNS' && c.type !== 'bKGD' && c.type !== 'sBIT');
  return Buffer.concat([PNG_SIGNATURE, pngChunk('IHDR', pngHeader(view.getUint32(0), view.getUint32(4), 8, 3)), PLTE, TRNS, ...rest.map((c) => c.raw)]);
}
