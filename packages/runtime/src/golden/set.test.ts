import { describe, expect, it } from 'vitest';
import { comparePaths } from './set.js';

describe('comparePaths (Python pathlib order)', () => {
  it.each<[string[], string[]]>([
    [['masks/a.png', 'images/a.jpg'], ['images/a.jpg', 'masks/a.png']],
    // String order would put "images-x/…" first ('-' < '/'); path order compares "images" < "images-x".
    [['images-x/b', 'images/a'], ['images/a', 'images-x/b']],
    [['a/b/c', 'a/b'], ['a/b', 'a/b/c']],
    [['B', 'a'], ['B', 'a']],
  ])('%j → %j', (input, expected) => {
    expect([...input].sort(comparePaths)).toEqual(expected);
  });
});
