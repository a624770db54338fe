// The upload page: three files from services/gateway/public, read once at start-up and served
// from memory. No build step, no bundler, no third-party script.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export interface PageAsset {
  readonly route: string;
  readonly contentType: string;
  readonly body: Buffer;
}

/** services/gateway/public, from src/adapters/http or dist/adapters/http alike. */
export const PUBLIC_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'public');

const FILES: ReadonlyArray<readonly [route: string, file: string, contentType: string]> = [
  ['/', 'index.html', 'text/html; charset=utf-8'],
  ['/app.js', 'app.js', 'text/javascript; charset=utf-8'],
  ['/style.css', 'style.css', 'text/css; charset=utf-8'],
];

export function loadPageAssets(dir: string = PUBLIC_DIR): PageAsset[] {
  return FILES.map(([route, file, contentType]) => ({ route, contentType, body: readFileSync(path.join(dir, file)) }));
}

/** The page loads only its own script and style; masks arrive as data: URLs. */
export const PAGE_SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy': "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-cache',
};
