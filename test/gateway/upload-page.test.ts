// The upload page end to end in headless Chromium (Debian's chromium driven by playwright-core):
// upload a golden image → the overlay appears and the stats match the JSON API; upload a text
// file → the error is shown. UPDATE_SCREENSHOT=1 also writes docs/upload-page.png.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { REPO_ROOT, requireBinary, waitFor } from '../helpers/process.js';
import { chooseDefaultModel } from '@segserve/cli';
import { ipv4Target, startGatewayProc, startInference, TINY_IMAGES, type GatewayProc, type InferenceProc } from './stack.js';

const CHROMIUM = '/usr/bin/chromium';
let inference: InferenceProc;
let gateway: GatewayProc;
let browser: Browser;
let page: Page;

// The model `npm start` serves (the bundled default, or the tiny fixture until it exists), with
// a photo of its golden set.
const model = chooseDefaultModel();
const goldenDir = [path.join(path.dirname(model.dir), 'golden', 'images'), path.join(REPO_ROOT, 'models', 'facade-ads', 'golden', 'images'), TINY_IMAGES].find((d) => existsSync(d) && readdirSync(d).length > 0) ?? TINY_IMAGES;
const photo = path.join(goldenDir, readdirSync(goldenDir).filter((f) => /\.(jpe?g|png)$/i.test(f)).sort()[0] ?? '');

beforeAll(async () => {
  requireBinary(CHROMIUM, 'apt-get install -y chromium (or: bash scripts/setup.sh)');
  inference = await startInference(model.dir);
  gateway = await startGatewayProc({ SEGSERVE_UPSTREAMS: `${model.name}=${ipv4Target(inference)}` });
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  page = await browser.newPage({ viewport: { width: 1280, height: 860 } });
  page.setDefaultTimeout(60_000);
});

/**
 * Waits until `expression` is true in the page. Page expressions are strings, so the test needs
 * no DOM typings. Polled from here with `page.evaluate`: `page.waitForFunction` evaluates its
 * predicate inside the page with eval, which the page's Content-Security-Policy (script-src 'self')
 * refused in a run with both cores busy ("Evaluating a string as JavaScript violates …").
 */
async function inPage(expression: string, what: string): Promise<void> {
  await waitFor(() => page.evaluate<boolean>(expression), { timeoutMs: 60_000, what });
}

afterAll(async () => {
  await browser?.close();
  await gateway?.[Symbol.asyncDispose]();
  await inference?.[Symbol.asyncDispose]();
});

describe('upload page', () => {
  it('lists the served model', async () => {
    await page.goto(`${gateway.base}/`);
    await inPage(`document.getElementById('model').value === ${JSON.stringify(model.name)}`, 'the model list');
  });

  it('uploading a golden image shows the mask overlay, the version, the time and the class shares of the JSON API', async () => {
    await page.setInputFiles('#file', photo);
    await page.waitForSelector('#result:not([hidden])');
    await inPage("document.getElementById('overlay').complete && document.getElementById('overlay').naturalWidth > 0", 'the overlay image');

    const form = new FormData();
    form.append('image', new Blob([new Uint8Array(readFileSync(photo))]), path.basename(photo));
    const api = (await (await fetch(`${gateway.base}/v1/models/${model.name}/segment?format=color`, { method: 'POST', body: form, headers: { accept: 'application/json' } })).json()) as {
      version: string;
      width: number;
      height: number;
      classes: Array<{ name: string; pixels: number; fraction: number }>;
    };

    const shown = await page.$$eval('#stats tbody tr', (rows) => rows.map((r) => ({ name: r.getAttribute('data-class'), share: r.querySelector('.share')?.firstChild?.textContent, pixels: r.querySelector('.pixels')?.textContent })));
    expect(shown).toEqual(api.classes.map((c) => ({ name: c.name, share: `${(c.fraction * 100).toFixed(1)} %`, pixels: c.pixels.toLocaleString('en') })));
    expect(await page.textContent('#version')).toBe(api.version);
    expect(await page.textContent('#size')).toBe(`${api.width} × ${api.height}`);
    expect(await page.textContent('#timing')).toMatch(/\d+(\.\d+)? m?s in total/);
    const overlay = await page.evaluate<{ w: number; h: number }>("({ w: document.getElementById('overlay').naturalWidth, h: document.getElementById('overlay').naturalHeight })");
    expect(overlay).toEqual({ w: api.width, h: api.height });
    expect(await page.isHidden('#error')).toBe(true);
  });

  it('the opacity slider changes the overlay', async () => {
    await page.fill('#opacity', '70');
    expect(await page.evaluate<string>("document.getElementById('overlay').style.opacity")).toBe('0.7');
    expect(await page.textContent('#opacity-value')).toBe('70%');
    await page.locator('#opacity').blur();
    if (process.env['UPDATE_SCREENSHOT'] === '1') await page.screenshot({ path: path.join(REPO_ROOT, 'docs', 'upload-page.png'), fullPage: true });
  });

  it('uploading a text file shows a clear error', async () => {
    await page.setInputFiles('#file', { name: 'notes.txt', mimeType: 'text/plain', buffer: Buffer.from('these are my notes, not a photo\n') });
    await page.waitForSelector('#error:not([hidden])');
    expect(await page.getAttribute('#error', 'data-code')).toBe('UNSUPPORTED_MEDIA_TYPE');
    expect(await page.textContent('#error')).toContain('not an image');
    expect(await page.isHidden('#result')).toBe(true);
  });
});
