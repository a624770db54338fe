import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chooseDefaultModel, DEFAULT_MODEL_FILE, REPO_ROOT, sampleImage } from './models.js';
import { banner, shellQuote } from './start.js';

let root: string;
const addModel = (rel: string, name: string, version: string): void => {
  const dir = path.join(root, rel);
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, 'model.json'), JSON.stringify({ name, version }));
  writeFileSync(path.join(dir, 'model.onnx'), '');
};

beforeEach(() => {
  root = mkdtempSync(path.join(os.tmpdir(), 'segserve-start-unit-'));
});
afterEach(() => rmSync(root, { recursive: true, force: true }));

describe('chooseDefaultModel', () => {
  it('falls back to the tiny fixture while no bundled version exists', () => {
    addModel('test/fixtures/models/tiny-seg/1', 'tiny-seg', '1');
    addModel('test/fixtures/models/tiny-seg/2', 'tiny-seg', '2');
    expect(chooseDefaultModel(root)).toMatchObject({ name: 'tiny-seg', version: '2', note: expect.stringContaining('tiny') as string });
  });

  it('prefers the DEFAULT file\'s version over newer candidates', () => {
    addModel('test/fixtures/models/tiny-seg/1', 'tiny-seg', '1');
    for (const v of ['2', '4', '10']) addModel(`models/facade-ads/${v}`, 'facade-ads', v);
    writeFileSync(path.join(root, DEFAULT_MODEL_FILE), '2\n');
    expect(chooseDefaultModel(root)).toMatchObject({ name: 'facade-ads', version: '2', note: 'the bundled default model' });
  });

  it('the repository names its default in one place, and it is a committed model', () => {
    const model = chooseDefaultModel();
    expect(readFileSync(path.join(REPO_ROOT, DEFAULT_MODEL_FILE), 'utf8').trim()).toBe(model.version);
    expect(model.dir).toBe(path.join(REPO_ROOT, 'models', 'facade-ads', model.version));
  });

  it('follows a DEFAULT file, else takes the newest version (numeric order)', () => {
    for (const v of ['3', '9', '10']) addModel(`models/facade-ads/${v}`, 'facade-ads', v);
    expect(chooseDefaultModel(root).version).toBe('10');
    writeFileSync(path.join(root, 'models/facade-ads/DEFAULT'), '9\n');
    expect(chooseDefaultModel(root).version).toBe('9');
  });

  it('fails with both places named when there is nothing to serve', () => {
    expect(() => chooseDefaultModel(root)).toThrow(/models\/facade-ads.*tiny-seg/);
  });
});

describe('banner', () => {
  it('prints runnable commands with quoted paths', () => {
    addModel('models/facade-ads/2', 'facade-ads', '2');
    mkdirSync(path.join(root, 'models/facade-ads/golden/images'), { recursive: true });
    writeFileSync(path.join(root, 'models/facade-ads/golden/images/b.jpg'), '');
    writeFileSync(path.join(root, 'models/facade-ads/golden/images/a photo.jpg'), '');
    const model = chooseDefaultModel(root);
    const image = sampleImage(model, root);
    expect(path.basename(image ?? '')).toBe('a photo.jpg');
    const text = banner(model, { host: '0.0.0.0', httpPort: 8080, grpcPort: 9090 }, image, false);
    expect(text).toContain('http://localhost:8080/');
    expect(text).toContain(`-F image=@${shellQuote(image ?? '')} http://localhost:8080/v1/models/facade-ads/segment`);
    expect(text).toMatch(/grpc-example\.js localhost:9090 facade-ads '.*a photo\.jpg' mask\.png/);
    expect(shellQuote("it's")).toBe(`'it'\\''s'`);
  });
});
