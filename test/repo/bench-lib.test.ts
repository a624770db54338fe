// The pure helpers of bench/lib that decide what a benchmark runs and reports: its flags, the order
// in which a before/after comparison visits the trees (bench/lib/trees.mjs), and the grouping of a
// process's mappings at its memory peak (bench/lib/smaps.mjs). Tables.
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { args, pickByIndex, withoutFlags } from '../../bench/lib/args.mjs';
import { mappingKind, smapsBreakdown } from '../../bench/lib/smaps.mjs';
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

describe('bench/lib/smaps', () => {
  // One mapping of smaps: its header line and the Rss line (the other fields do not count).
  const mapping = (from: number, to: number, name: string, rssKb: number) =>
    `${from.toString(16)}-${to.toString(16)} rw-p 00000000 00:00 0                          ${name}\nSize:           ${(to - from) / 1024} kB\nRss:            ${rssKb} kB\nPss:            ${rssKb} kB\nAnonHugePages:        0 kB\n`;
  const MiB = 2 ** 20;

  it.each([
    ['a file-backed mapping', mapping(0x1000, 0x1000 + 4 * MiB, '/usr/bin/node', 3072), { fileMb: 3, heapMb: 0, anonSmallMb: 0, anonLargeMb: 0, totalMb: 3 }],
    ['a deleted file is still a file', mapping(0x1000, 0x2000, '/tmp/x (deleted)', 4), { fileMb: 4 / 1024, heapMb: 0, anonSmallMb: 0, anonLargeMb: 0, totalMb: 4 / 1024 }],
    ['the main malloc arena', mapping(0x1000, 0x1000 + 24 * MiB, '[heap]', 2048), { fileMb: 0, heapMb: 2, anonSmallMb: 0, anonLargeMb: 0, totalMb: 2 }],
    ['an anonymous mapping just under 1 MiB', mapping(0x1000, 0x1000 + MiB - 4096, '', 1020), { fileMb: 0, heapMb: 0, anonSmallMb: 1020 / 1024, anonLargeMb: 0, totalMb: 1020 / 1024 }],
    ['a stack counts by its size', mapping(0x1000, 0x1000 + 132 * 1024, '[stack]', 40), { fileMb: 0, heapMb: 0, anonSmallMb: 40 / 1024, anonLargeMb: 0, totalMb: 40 / 1024 }],
    ['an anonymous mapping of exactly 1 MiB', mapping(0x1000, 0x1000 + MiB, '', 512), { fileMb: 0, heapMb: 0, anonSmallMb: 0, anonLargeMb: 0.5, totalMb: 0.5 }],
    ['nothing', '', { fileMb: 0, heapMb: 0, anonSmallMb: 0, anonLargeMb: 0, totalMb: 0 }],
  ])('%s', (_what, text, expected) => {
    const { large: _large, ...groups } = smapsBreakdown(text);
    expect(groups).toEqual(expected);
  });

  it('lists the anonymous mappings of 1 MiB or more by resident size, largest first', () => {
    const text = [
      mapping(0x10000000, 0x10000000 + 80 * MiB, '', 72 * 1024),
      mapping(0x20000000, 0x20000000 + 12 * MiB, '', 10 * 1024),
      mapping(0x30000000, 0x30000000 + 128 * MiB, '', 0),
      mapping(0x40000000, 0x40000000 + 11 * MiB, '', 10.5 * 1024),
      mapping(0x50000000, 0x50000000 + 64 * 1024, '', 64),
    ].join('');
    const b = smapsBreakdown(text);
    expect(b.large.map((m) => [m.sizeMb, m.rssMb])).toEqual([
      [80, 72],
      [11, 10.5],
      [12, 10],
      [128, 0],
    ]);
    expect(b.anonLargeMb).toBe(92.5);
    expect(b.anonSmallMb).toBe(1 / 16);
  });

  it("names each large mapping's kind from its VmFlags and address", () => {
    const withFlags = (from: number, size: number, flags: string) => `${mapping(from, from + size, '', size / 1024)}VmFlags: ${flags}\n`;
    const b = smapsBreakdown(
      [
        withFlags(0x7f0000000000, 75 * MiB, 'rd wr mr mw me ac hg'),
        withFlags(0x7f0100000000, 12 * MiB, 'rd wr mr mw me dc nr'),
        withFlags(0x7f0104000000, 10 * MiB, 'rd wr mr mw me nr'),
        withFlags(0x7f0108001000, 9 * MiB, 'rd wr mr mw me nr'),
        withFlags(0x7f010c000000, 8 * MiB, 'rd wr mr mw me ac'),
        mapping(0x7f0110000000, 0x7f0110000000 + 7 * MiB, '', 7 * 1024),
      ].join(''),
    );
    expect(b.large.map((m) => [m.sizeMb, m.kind])).toEqual([
      [75, 'malloc'],
      [12, 'wasm'],
      [10, 'arena'],
      [9, 'other'],
      [8, 'other'],
      [7, 'other'],
    ]);
  });

  it.each([
    [['rd', 'wr', 'hg'], 0x1000, 'malloc'],
    [['rd', 'wr', 'dc', 'nr'], 0x4000000, 'wasm'],
    [['rd', 'wr', 'nr'], 0x4000000, 'arena'],
    [['rd', 'wr', 'nr'], 0x4001000, 'other'],
    [[], 0, 'other'],
  ])('mappingKind(%j, %s) is %s', (flags, start, kind) => {
    expect(mappingKind(flags, start)).toBe(kind);
  });
});
