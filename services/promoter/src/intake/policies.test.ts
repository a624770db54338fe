import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { loadPolicies } from './policies.js';

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
