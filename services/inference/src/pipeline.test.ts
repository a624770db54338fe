import { describe, expect, it } from 'vitest';
import { StageTimer } from './pipeline.js';

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
