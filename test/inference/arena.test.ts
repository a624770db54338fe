// SEGSERVE_ORT_ARENA at load (services/inference/src/model-loader.ts, domain/arena.ts): 'auto'
// creates the sessions with onnxruntime's arena off, reads the warm-up run's growth, and creates
// them again with the arena on when it is small; the start-up line and a gauge say what was
// chosen. Real onnxruntime sessions; the memory readings are scripted.

import { describe, expect, it } from 'vitest';
import os from 'node:os';
import { DEFAULTS, defaultBackendFactory, parseConfig, type BackendFactory, type MemoryProbe } from '@segserve/inference';
import { parseStartupLine } from '@segserve/proto';
import { MODELS, png, segment, startTestServer, syntheticImage, wrapBackend } from './helpers.js';

const MiB = 2 ** 20;
const LIMIT_MB = 512;
const image = await png(syntheticImage(120, 80, 1));

/** The real backend factory, recording the arena of every backend it creates and which were closed. */
function recordingFactory(): { createBackend: BackendFactory; created: (boolean | undefined)[]; closed: number[] } {
  const real = defaultBackendFactory(parseConfig({ SEGSERVE_MODEL_DIR: MODELS.seg }, { cpuLimit: 2, tmpDir: os.tmpdir() }));
  const created: (boolean | undefined)[] = [];
  const closed: number[] = [];
  return {
    created,
    closed,
    createBackend: async (artifact, arena) => {
      const i = created.push(arena) - 1;
      const b = await real(artifact, arena);
      return wrapBackend(b, { close: () => (closed.push(i), b.close()) });
    },
  };
}

/** Every warm-up run peaks `growthMb` above a steady resident set. */
const growing = (growthMb: number): MemoryProbe => ({ resetPeak: () => true, read: () => ({ rssBytes: 200 * MiB, peakBytes: (200 + growthMb) * MiB }) });
const share = DEFAULTS.arenaMaxShare * LIMIT_MB;

describe('onnxruntime arena chosen at load', () => {
  it.each<[string, string, MemoryProbe, (boolean | undefined)[], boolean, string]>([
    ['auto, small activations: created again with the arena on', 'auto', growing(share / 4), [false, true], true, 'small-activations'],
    ['auto, large activations: the arena stays off', 'auto', growing(share * 2), [false], false, 'large-activations'],
    ['auto, nothing measurable: the arena stays off', 'auto', { resetPeak: () => false, read: () => undefined }, [false], false, 'not-measured'],
    ['on', 'on', growing(share * 2), [true], true, 'set'],
    ['off', 'off', growing(share / 4), [false], false, 'set'],
  ])('%s', async (_name, mode, memory, created, arena, reason) => {
    const f = recordingFactory();
    await using s = await startTestServer({ model: MODELS.seg, createBackend: f.createBackend, memory, env: { SEGSERVE_ORT_ARENA: mode, SEGSERVE_MEMORY_LIMIT_MB: String(LIMIT_MB) } });
    expect(f.created).toEqual(created);
    // Only the backend that is served stays open.
    expect(f.closed).toEqual(created.slice(0, -1).map((_, i) => i));
    const line = s.logs.map((l) => parseStartupLine('inference', l)).find((l) => l !== undefined);
    expect(line).toMatchObject({ ort_arena: arena, ort_arena_reason: reason });
    expect(await s.sample('segserve_inference_ort_arena')).toBe(arena ? 1 : 0);
    expect((await segment(s.clients, image)).value?.width).toBe(120);
  });
});
