import { describe, expect, it } from 'vitest';
import { isValidModelName, parseModelManifest } from './model-manifest.js';

const valid = {
  name: 'facade-ads',
  version: '2',
  sha256: 'a'.repeat(64),
  input: { name: 'input', height: 64, width: 96, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225], scale: 1 / 255 },
  output: { name: 'logits', kind: 'logits' },
  classes: ['background', 'advertising'],
};

describe('parseModelManifest', () => {
  it('accepts a valid manifest', () => {
    expect(parseModelManifest(structuredClone(valid)).name).toBe('facade-ads');
  });

  it.each([
    ['unknown key', { ...valid, extra: 1 }, /must NOT have additional properties 'extra'/],
    ['bad name', { ...valid, name: '../etc' }, /name must match pattern/],
    ['path-trick version', { ...valid, version: 'a..b' }, /not a valid version/],
    ['one class', { ...valid, classes: ['x'] }, /classes must NOT have fewer than 2 items/],
    ['zero std', { ...valid, input: { ...valid.input, std: [0, 1, 1] } }, /input.std.0 must be > 0/],
    ['bad kind', { ...valid, output: { name: 'o', kind: 'softmax' } }, /output.kind must be equal to one of the allowed values/],
    ['sigmoid with 3 classes', { ...valid, output: { name: 'o', kind: 'sigmoid', threshold: 0.5 }, classes: ['a', 'b', 'c'] }, /exactly 2 classes/],
  ])('rejects %s', (_name, manifest, message) => {
    expect(() => parseModelManifest(structuredClone(manifest))).toThrow(message);
  });

  it.each([
    ['facade-ads', true],
    ['a', true],
    ['-a', false],
    ['A', false],
    ['a/b', false],
    ['..', false],
    ['a'.repeat(64), false],
  ])('model name %s valid=%s', (name, ok) => {
    expect(isValidModelName(name)).toBe(ok);
  });
});
