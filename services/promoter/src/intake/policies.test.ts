import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { BUNDLED_POLICIES, defaultGoldenDir, loadPolicies } from './policies.js';

const dirs: string[] = [];
async function dir(files: Record<string, string>): Promise<string> {
  const d = await mkdtemp(path.join(os.tmpdir(), 'segserve-policies-'));
  dirs.push(d);
  for (const [name, text] of Object.entries(files)) await writeFile(path.join(d, name), text);
  return d;
}
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

const minimal = (model: string) => `model: ${model}\nobjectives: [{metric: miou, better: higher}]\n`;

describe('loadPolicies', () => {
  it('reads the bundled policy directory', async () => {
    const policies = await loadPolicies(fileURLToPath(new URL('../../policies', import.meta.url)));
    expect([...policies.keys()]).toEqual(['facade-ads']);
  });

  it('reads one file, or every .yaml/.yml/.json of a directory', async () => {
    const d = await dir({ 'a.yaml': minimal('a'), 'b.yml': minimal('b'), 'c.json': JSON.stringify({ model: 'c', objectives: [{ metric: 'miou', better: 'higher' }] }), 'notes.txt': 'x' });
    expect([...(await loadPolicies(d)).keys()]).toEqual(['a', 'b', 'c']);
    expect([...(await loadPolicies(path.join(d, 'b.yml'))).keys()]).toEqual(['b']);
  });

  it.each([
    ['two policies for one model', { 'a.yaml': minimal('a'), 'a2.yaml': minimal('a') }, /a2.yaml: a second policy for model 'a'/],
    ['an invalid policy, naming the file', { 'bad.yaml': 'model: a\nobjectives: []\n' }, /bad.yaml: objectives must NOT have fewer than 1 items/],
    ['a directory without policies', { 'readme.md': '#' }, /no policy file/],
  ])('refuses %s', async (_name, files, message) => {
    await expect(loadPolicies(await dir(files))).rejects.toThrow(message);
  });

  it('refuses a path that does not exist', async () => {
    await expect(loadPolicies('/nonexistent/policies')).rejects.toThrow(/cannot be read/);
  });
});

describe('defaultGoldenDir: the newest golden set the model\'s policy accepts, beside the version', () => {
  const REPO = fileURLToPath(new URL('../../../../', import.meta.url));
  it.each([
    ['facade-ads (the bundled policy: golden_sets [golden-2, golden])', 'models/facade-ads/3', 'models/facade-ads/golden-2'],
    ['a model without a policy', 'test/fixtures/models/tiny-seg/1', 'test/fixtures/models/tiny-seg/golden'],
  ])('%s', async (_name, version, golden) => {
    expect(await defaultGoldenDir(path.join(REPO, version))).toBe(path.join(REPO, golden));
  });

  it('follows the policy it is given, and the bundled one is where SEGSERVE_POLICY points by default', async () => {
    const d = await dir({ 'tiny-seg.yaml': `${minimal('tiny-seg')}verify: {golden_sets: [golden-3, golden]}\n` });
    expect(await defaultGoldenDir(path.join(REPO, 'test/fixtures/models/tiny-seg/1'), d)).toBe(path.join(REPO, 'test/fixtures/models/tiny-seg/golden-3'));
    expect(BUNDLED_POLICIES).toBe(path.join(REPO, 'services', 'promoter', 'policies'));
  });
});
