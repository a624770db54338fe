// The pure helpers of bench/lib that decide what a benchmark runs: its flags, and the order in
// which a before/after comparison visits the trees (bench/lib/trees.mjs). Tables.
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { args, pickByIndex, withoutFlags } from '../../bench/lib/args.mjs';
import { treesOf, turnAt, turnOrder } from '../../bench/lib/trees.mjs';

describe('bench/lib/args', () => {
  it.each([
    [['--a', '1', '--b', '--c', 'x'], { a: '1', b: 'true', c: 'x' }],
    [['--flag'], { flag: 'true' }],
    [['--settings', 'default;SEGSERVE_ORT_NICE=10'], { settings: 'default;SEGSERVE_ORT_NICE=10' }],
    [[], {}],
  ])('args(%j)', (argv, expected) => {
    expect(args(argv)).toEqual(expected);
  });

  it.each([
    [['--scenarios', 'matrix', '--before', '/tmp/b', '--turns', '4', '--chart'], ['before', 'turns'], ['chart'], ['--scenarios', 'matrix']],
    [['--before', '/tmp/b', '--repeats', '1'], ['before'], [], ['--repeats', '1']],
    // A valued flag given bare takes nothing after it with it.
    [['--before', '--quick'], ['before'], [], ['--quick']],
    [['--chart', '--quick'], [], ['chart'], ['--quick']],
    // A value equal to a flag's name is a value, not that flag.
    [['--models', 'chart'], [], ['chart'], ['--models', 'chart']],
  ])('withoutFlags(%j, %j, %j)', (argv, valued, bare, expected) => {
    expect(withoutFlags(argv, valued, bare)).toEqual(expected);
  });

  it('pickByIndex keeps the order asked for and names the flag of a bad index', () => {
    expect(pickByIndex(['a', 'b', 'c'], '2,0', 'configs')).toEqual(['c', 'a']);
    expect(pickByIndex(['a', 'b'], undefined, 'configs')).toEqual(['a', 'b']);
    expect(() => pickByIndex(['a', 'b'], '2', 'configs')).toThrow(/--configs: '2'/);
  });
});

describe('bench/lib/trees', () => {
  it.each([
    [['before', 'after'], 0, ['before', 'after']],
    [['before', 'after'], 1, ['after', 'before']],
    [['before', 'after'], 2, ['before', 'after']],
    [['after'], 1, ['after']],
  ])('turnAt(%j, %i)', (names, i, expected) => {
    expect(turnAt(names, i)).toEqual(expected);
  });

  it.each([
    [['before', 'after'], 2, ['before', 'after', 'after', 'before']],
    [['before', 'after'], 4, ['before', 'after', 'after', 'before', 'before', 'after', 'after', 'before']],
    [['before', 'after'], 1, ['before', 'after']],
    [['after'], 1, ['after']],
    [['after'], 3, ['after', 'after', 'after']],
    [['before', 'after'], 0, []],
  ])('turnOrder(%j, %i)', (names, rounds, expected) => {
    expect(turnOrder(names, rounds)).toEqual(expected);
  });

  it('each tree goes first as often as the other over whole pairs of rounds', () => {
    const order = turnOrder(['before', 'after'], 6);
    const firsts = Array.from({ length: 6 }, (_, i) => order[2 * i]);
    expect(firsts.filter((t) => t === 'before')).toHaveLength(3);
  });

  const built = (dir: string) => (file: string) => file === path.join(dir, 'packages', 'cli', 'dist', 'bin.js');
  it.each([
    ['no --before: this checkout alone', undefined, { after: '/repo' }],
    ['a relative --before resolves against the working directory, before first', '../b', { before: '/home/dev/b', after: '/repo' }],
    ['an absolute --before', '/home/dev/b', { before: '/home/dev/b', after: '/repo' }],
  ])('treesOf: %s', (_what, before, expected) => {
    const trees = treesOf(before, { root: '/repo', cwd: '/home/dev/x', exists: built('/home/dev/b') });
    expect(trees).toEqual(expected);
    expect(Object.keys(trees)).toEqual(Object.keys(expected));
  });

  it.each([
    ['a bare --before', 'true', /the path of a built checkout/],
    ['a checkout without a build', '/home/dev/unbuilt', /no built checkout there/],
  ])('treesOf refuses %s', (_what, before, message) => {
    expect(() => treesOf(before, { root: '/repo', cwd: '/home/dev/x', exists: built('/home/dev/b') })).toThrow(message);
  });
});

