import { describe, expect, it } from 'vitest';
import { setImmediate as tick, setTimeout as sleep } from 'node:timers/promises';
import { GarbageMeter, collectGarbage, collectYoungGarbage } from './gc.js';

describe('collectGarbage', () => {
  it('collects what nothing references any more', async () => {
    // A WeakRef's target is kept until the job that made it ends: drop it in a function, let the job end.
    const make = (): WeakRef<object> => new WeakRef({ payload: new Array(1000).fill(0) });
    const refs = Array.from({ length: 20 }, make);
    await tick();
    expect(collectGarbage()).toBeGreaterThanOrEqual(0);
    expect(refs.filter((r) => r.deref() !== undefined)).toEqual([]);
  });

  it('leaves what is still referenced', async () => {
    const kept = { payload: [1, 2, 3] };
    const ref = new WeakRef(kept);
    await tick();
    collectGarbage();
    collectGarbage();
    expect(ref.deref()).toBe(kept);
  });
});

describe('collectYoungGarbage', () => {
  it('frees the memory of an ArrayBuffer nothing references any more', async () => {
    // Well under V8's external-memory limit (64 MiB), which would start a collection of its own.
    const size = 8 * 2 ** 20;
    const drop = (): void => {
      new Uint8Array(size).fill(1);
    };
    collectYoungGarbage();
    const before = process.memoryUsage().arrayBuffers;
    drop();
    await tick();
    expect(process.memoryUsage().arrayBuffers - before).toBeGreaterThanOrEqual(size);
    expect(collectYoungGarbage()).toBeGreaterThanOrEqual(0);
    // V8 frees dead buffers' memory on a background thread after the collection: wait for it
    // (nothing here would collect the buffer without the collection above).
    const freed = async (): Promise<boolean> => {
      for (let i = 0; i < 500; i++) {
        if (process.memoryUsage().arrayBuffers - before < size / 2) return true;
        await sleep(10);
      }
      return false;
    };
    expect(await freed()).toBe(true);
  });

  it('keeps what is still referenced', async () => {
    const kept = new Uint8Array(8 * 2 ** 20).fill(1);
    await tick();
    collectYoungGarbage();
    expect(process.memoryUsage().arrayBuffers).toBeGreaterThanOrEqual(kept.byteLength);
    expect(kept[kept.length - 1]).toBe(1);
  });
});

describe('GarbageMeter', () => {
  it('collects once the bytes dropped since the last collection reach the threshold', () => {
    let collections = 0;
    const meter = new GarbageMeter(4_000, () => collections++);
    expect([meter.dropped(1_500), meter.dropped(1_500), meter.dropped(1_000)]).toEqual([false, false, true]);
    expect(collections).toBe(1);
    // counted again from zero
    expect([meter.dropped(3_999), meter.dropped(1)]).toEqual([false, true]);
    // a buffer at or above the threshold: a collection for each
    expect([meter.dropped(7_000), meter.dropped(4_000)]).toEqual([true, true]);
    expect(collections).toBe(4);
  });

  it('with a threshold of 0 collects on every drop; a negative one is refused', () => {
    let collections = 0;
    const meter = new GarbageMeter(0, () => collections++);
    meter.dropped(0);
    meter.dropped(10);
    expect(collections).toBe(2);
    expect(() => new GarbageMeter(-1)).toThrow(RangeError);
    expect(() => new GarbageMeter(Number.NaN)).toThrow(RangeError);
  });
});
