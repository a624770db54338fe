// The gateway decodes nothing, but a glance at the first bytes turns obvious non-images into an
// early 415 without a round trip. Only formats we can name with certainty are rejected; anything
// else goes upstream, where the inference pod judges by decoding (docs/reliability.md items 5, 8).

export type SniffResult =
  | { readonly kind: 'image'; readonly format: 'jpeg' | 'png' | 'webp' }
  | { readonly kind: 'rejected'; readonly format: string }
  | { readonly kind: 'unknown' };

const startsWith = (bytes: Uint8Array, prefix: readonly number[], offset = 0): boolean =>
  bytes.length >= offset + prefix.length && prefix.every((b, i) => bytes[offset + i] === b);

const ascii = (s: string): number[] => [...s].map((c) => c.charCodeAt(0));

/** Looks at the first bytes of an upload and names what it certainly is. */
export function sniffImage(bytes: Uint8Array): SniffResult {
  if (startsWith(bytes, [0xff, 0xd8, 0xff])) return { kind: 'image', format: 'jpeg' };
  if (startsWith(bytes, [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])) return { kind: 'image', format: 'png' };
  if (startsWith(bytes, ascii('RIFF')) && startsWith(bytes, ascii('WEBP'), 8)) return { kind: 'image', format: 'webp' };
  if (startsWith(bytes, ascii('GIF87a')) || startsWith(bytes, ascii('GIF89a'))) return { kind: 'rejected', format: 'GIF' };
  if (startsWith(bytes, [0x49, 0x49, 0x2a, 0x00]) || startsWith(bytes, [0x4d, 0x4d, 0x00, 0x2a])) return { kind: 'rejected', format: 'TIFF' };
  if (startsWith(bytes, [0x49, 0x49, 0x2b, 0x00]) || startsWith(bytes, [0x4d, 0x4d, 0x00, 0x2b])) return { kind: 'rejected', format: 'BigTIFF' };
  if (startsWith(bytes, ascii('%PDF-'))) return { kind: 'rejected', format: 'PDF' };
  if (startsWith(bytes, ascii('BM'))) return { kind: 'rejected', format: 'BMP' };
  if (startsWith(bytes, [0x50, 0x4b, 0x03, 0x04])) return { kind: 'rejected', format: 'ZIP' };
  if (looksLikeText(bytes)) return { kind: 'rejected', format: isMarkup(bytes) ? 'SVG/XML/HTML' : 'text' };
  return { kind: 'unknown' };
}

/** No control bytes other than whitespace in the first 512 bytes (UTF-8 text, SVG, JSON …). */
function looksLikeText(bytes: Uint8Array): boolean {
  const n = Math.min(bytes.length, 512);
  if (n === 0) return false;
  for (let i = 0; i < n; i++) {
    const b = bytes[i] ?? 0;
    if (b < 0x20 && b !== 0x09 && b !== 0x0a && b !== 0x0d && b !== 0x0c) return false;
    if (b === 0x7f) return false;
  }
  return true;
}

function isMarkup(bytes: Uint8Array): boolean {
  const head = Buffer.from(bytes.subarray(0, 512)).toString('utf8').replace(/^\uFEFF/, '').trimStart();
  return head.startsWith('<');
}
