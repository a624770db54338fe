// The decode allowlist, judged by the bytes and never by a client's Content-Type
// (docs/reliability.md items 5, 8). Checked before any decoder sees the data, so SVG, TIFF, GIF, PDF and
// friends never reach libvips' loaders.

export type ImageFormat = 'jpeg' | 'png' | 'webp';

export const ALLOWED_FORMATS: readonly ImageFormat[] = ['jpeg', 'png', 'webp'];

export function sniffImageFormat(bytes: Uint8Array): ImageFormat | undefined {
  const at = (i: number): number => bytes[i] ?? -1;
  if (at(0) === 0xff && at(1) === 0xd8 && at(2) === 0xff) return 'jpeg';
  if ([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a].every((b, i) => at(i) === b)) return 'png';
  const ascii = (from: number, to: number): string => String.fromCharCode(...bytes.subarray(from, to));
  if (bytes.length >= 12 && ascii(0, 4) === 'RIFF' && ascii(8, 12) === 'WEBP') return 'webp';
  return undefined;
}
