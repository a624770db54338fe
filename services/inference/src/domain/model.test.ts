import { describe, expect, it } from 'vitest';
import { ModelLoadError, describeModel, sha256Hex, verifyArtifact, type GraphValue } from './model.js';

const onnx = new TextEncoder().encode('pretend onnx');
const manifest = {
  name: 'm',
  version: '1',
  sha256: sha256Hex(onnx),
  input: { name: 'input', height: 4, width: 6, mean: [0, 0, 0], std: [1, 1, 1], scale: 1 },
  output: { name: 'logits', kind: 'logits' },
  classes: ['bg', 'fg'],
};

describe('verifyArtifact', () => {
  it('accepts a manifest whose digest matches the bytes', () => {
    expect(verifyArtifact(structuredClone(manifest), onnx, '/m/1').sha256).toBe(manifest.sha256);
  });

  it.each<[string, unknown, string | undefined, string, RegExp]>([
    ['digest mismatch', { ...manifest, sha256: '0'.repeat(64) }, undefined, 'digest_mismatch', /has sha256 [0-9a-f]{64} but model.json says 0{64}/],
    ['pinned digest differs', manifest, 'f'.repeat(64), 'digest_mismatch', /SEGSERVE_MODEL_SHA256 is f{64}/],
    ['invalid manifest', { ...manifest, classes: ['one'] }, undefined, 'invalid_manifest', /\/m\/1\/model.json: classes must NOT have fewer than 2 items/],
  ])('%s → %s', (_name, json, pinned, reason, message) => {
    const verify = (): unknown => verifyArtifact(structuredClone(json), onnx, '/m/1', pinned);
    expect(verify).toThrow(ModelLoadError);
    expect(verify).toThrow(expect.objectContaining({ reason, message: expect.stringMatching(message) }) as Error);
  });
});

describe('describeModel', () => {
  const input: GraphValue = { name: 'input', type: 'float32', shape: [1, 3, 4, 6] };
  const output: GraphValue = { name: 'logits', type: 'float32', shape: [1, 2, 4, 6] };
  const artifact = (over: Record<string, unknown> = {}) => ({ manifest: { ...verifyArtifact(structuredClone(manifest), onnx, 'x').manifest, ...over }, sha256: manifest.sha256 }) as Parameters<typeof describeModel>[0];

  it('derives the tensor contract', () => {
    const m = describeModel(artifact(), [input], [output]);
    expect(m.input).toEqual({ name: 'input', shape: [1, 3, 4, 6] });
    expect(m.output).toEqual({ name: 'logits', channels: 2, shape: [1, 2, 4, 6] });
    expect(m.outputSpec).toEqual({ kind: 'logits', threshold: 0.5 });
    expect(m.normalization.channelOrder).toBe('RGB');
  });

  it('accepts symbolic batch and spatial output dims', () => {
    const m = describeModel(artifact(), [{ ...input, shape: ['batch', 3, 4, 6] }], [{ ...output, shape: ['batch', 2, 'h', 'w'] }]);
    expect(m.output.shape).toEqual([-1, 2, -1, -1]);
  });

  it.each<[string, ReturnType<typeof artifact>, GraphValue[], GraphValue[], RegExp]>([
    ['two inputs', artifact(), [input, input], [output], /2 inputs/],
    ['input name', artifact(), [{ ...input, name: 'x' }], [output], /input 'input' but the graph's input is 'x'/],
    ['input type', artifact(), [{ ...input, type: 'uint8' }], [output], /is uint8, not float32/],
    ['input size', artifact(), [{ ...input, shape: [1, 3, 8, 6] }], [output], /does not match model.json \[1,3,4,6\]/],
    ['missing output', artifact(), [input], [{ ...output, name: 'probs' }], /'logits' is not among the graph's outputs \(probs\)/],
    ['channels vs classes', artifact({ classes: ['a', 'b', 'c'] }), [input], [output], /2 channel\(s\) but model.json lists 3 classes/],
    ['sigmoid with 2 channels', artifact({ output: { name: 'logits', kind: 'sigmoid', threshold: 0.5 } }), [input], [output], /a sigmoid output has 1 channel; the graph's 'logits' has 2/],
    ['symbolic channels', artifact(), [input], [{ ...output, shape: [1, 'c', 4, 6] }], /symbolic channel/],
  ])('rejects %s', (_name, a, inputs, outputs, message) => {
    expect(() => describeModel(a, inputs, outputs)).toThrow(message);
  });

  it('accepts one-channel probabilities with two classes', () => {
    const m = describeModel(artifact({ output: { name: 'logits', kind: 'probabilities', threshold: 0.3 } }), [input], [{ ...output, shape: [1, 1, 4, 6] }]);
    expect(m.outputSpec).toEqual({ kind: 'probabilities', threshold: 0.3 });
  });
});
