import { describe, expect, it } from 'vitest';
import { setImmediate as tick } from 'node:timers/promises';
import { collectGarbage } from '@segserve/runtime';
import { encodeMaskPng } from './domain/mask-png.js';
import { describeModel, type GraphValue } from './domain/model.js';
import { Pipeline, StageTimer } from './pipeline.js';
import type { ClassMapOutput, ImageCodec, InferenceBackend } from './ports.js';

/** A clock that advances only when told to. */
function clock(): { now: () => number; advance: (ms: number) => void } {
  let t = 0;
  return { now: () => t, advance: (ms) => (t += ms) };
}

describe('StageTimer', () => {
  it('sums repeated stages and stamps the total', async () => {
    const c = clock();
    const timer = new StageTimer(c.now);
    await timer.time('decode', () => c.advance(3));
    await timer.time('decode', () => c.advance(2));
    await timer.time('infer', () => c.advance(40));
    expect(timer.finish()).toEqual({ decode: 5, infer: 40, total: 45 });
  });

  it.each<[string, number, { infer: number; queue: number }]>([
    ['a wait for a session moves from infer to queue', 30, { infer: 10, queue: 35 }],
    ['no wait changes nothing', 0, { infer: 40, queue: 5 }],
    ['a wait longer than the stage moves no more than the stage', 90, { infer: 0, queue: 45 }],
    ['a non-number changes nothing', Number.NaN, { infer: 40, queue: 5 }],
  ])('move: %s', async (_name, waited, expected) => {
    const c = clock();
    const timer = new StageTimer(c.now);
    await timer.time('queue', () => c.advance(5));
    await timer.time('infer', () => c.advance(40));
    timer.move('infer', 'queue', waited);
    expect({ infer: timer.ms.infer, queue: timer.ms.queue }).toEqual(expected);
    expect(timer.finish().total).toBe(45);
  });
});

describe('Pipeline.segment and the decoded image', () => {
  const [width, height] = [6, 4];
  const input: GraphValue = { name: 'input', type: 'float32', shape: [1, 3, height, width] };
  const output: GraphValue = { name: 'logits', type: 'float32', shape: [1, 2, height, width] };
  const model = describeModel(
    {
      manifest: { name: 'm', version: '1', sha256: '0'.repeat(64), input: { name: 'input', height, width, mean: [0, 0, 0], std: [1, 1, 1], scale: 1, channel_order: 'RGB' }, output: { name: 'logits', kind: 'logits' }, classes: ['bg', 'fg'] },
      sha256: '0'.repeat(64),
    } as Parameters<typeof describeModel>[0],
    [input],
    [output],
  );
  const upload = encodeMaskPng(new Uint8Array(width * height), width, height, width, height);

  /** A codec whose decoded images can be watched: `dropped` records the bytes and whether the image was still reachable. */
  function watchedCodec(): ImageCodec & { drops: { bytes: number; collected: boolean }[] } {
    let decoded: WeakRef<Uint8Array> | undefined;
    const drops: { bytes: number; collected: boolean }[] = [];
    return {
      drops,
      // A WeakRef's target is kept until the microtasks of the task that made it have run: made
      // in a task of its own, like sharp's answer.
      decodeResized: async (_bytes, w, h) => {
        await tick();
        const rgb = new Uint8Array(w * h * 3);
        decoded = new WeakRef(rgb);
        return rgb;
      },
      dropped: (bytes) => {
        collectGarbage();
        drops.push({ bytes, collected: decoded?.deref() === undefined });
      },
    };
  }

  function backend(run: (rgb: Uint8Array) => Promise<ClassMapOutput>): InferenceBackend {
    return {
      inputs: [input],
      outputs: [output],
      run: () => Promise.reject(new Error('not used')),
      segment: async (rgb) => {
        const copy = new Uint8Array(rgb);
        await tick();
        return run(copy);
      },
      warmUp: () => Promise.resolve(),
      close: () => Promise.resolve(),
    };
  }
  const classMap = (): ClassMapOutput => ({ classes: new Uint8Array(width * height), counts: Uint32Array.of(width * height, 0), width, height, waitedMs: 0, ms: { preprocess: 0, infer: 0, postprocess: 0 } });
  const limits = { maxPixels: 1e6, maxAspectFactor: 4 };

  it('tells the codec its size once the run has its copy, holding no reference to it', async () => {
    const codec = watchedCodec();
    const pipeline = new Pipeline({ model, codec, backend: backend(() => Promise.resolve(classMap())), limits });
    const result = await pipeline.segment(upload, pipeline.inspect(upload), 'RAW', new StageTimer());
    expect(result.mask.length).toBe(width * height);
    expect(codec.drops).toEqual([{ bytes: width * height * 3, collected: true }]);
  });

  it('also when the run fails', async () => {
    const codec = watchedCodec();
    const pipeline = new Pipeline({ model, codec, backend: backend(() => Promise.reject(new Error('run failed'))), limits });
    await expect(pipeline.segment(upload, pipeline.inspect(upload), 'PNG', new StageTimer())).rejects.toThrow('run failed');
    expect(codec.drops).toEqual([{ bytes: width * height * 3, collected: true }]);
  });
});
