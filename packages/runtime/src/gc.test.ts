import { describe, expect, it } from 'vitest';
import { setImmediate as tick } from 'node:timers/promises';
import { collectGarbage } from './gc.js';

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
