// Before/after on a busy machine: this checkout ('after') and another built checkout ('before',
// `--before <dir>`) measured in turn, so that a noisy neighbour hurts both alike. The order
// alternates pair by pair (before, after, after, before, …): neither tree always goes first.
//
// A before tree is a git worktree of the commit to compare with, built, with node_modules
// hard-linked from this checkout (`cp -al`, which keeps the workspace links relative, so that
// its @segserve packages are its own):
//   git worktree add --detach /tmp/before <commit> && cp -al node_modules /tmp/before/ \
//     && (cd /tmp/before && npx tsc -b)
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { REPO, baseEnv, segserveBin } from './procs.mjs';

/**
 * The trees named by a bench's flags: {after: this checkout} and, with `before` (a path, relative
 * to `cwd`), {before: that path}, before first. A before tree without a built CLI fails here.
 */
export function treesOf(before, { root = REPO, cwd = process.cwd(), exists = existsSync } = {}) {
  if (before === undefined) return { after: root };
  if (before === 'true' || before === '') throw new Error('--before: the path of a built checkout');
  const dir = path.resolve(cwd, before);
  if (!exists(segserveBin(dir))) throw new Error(`--before ${before}: no built checkout there (packages/cli/dist/bin.js; run npx tsc -b in it)`);
  return { before: dir, after: root };
}

/** The names of round `i` in turn: `names` as given in even rounds, reversed in odd ones. */
export function turnAt(names, i) {
  return i % 2 === 0 ? [...names] : [...names].reverse();
}

/** `rounds` rounds of `names` in turn: [b, a] × 2 → b, a, a, b. */
export function turnOrder(names, rounds) {
  return Array.from({ length: rounds }, (_, i) => turnAt(names, i)).flat();
}

/** `before=../x after=.` for a report's first line. */
export function describeTrees(trees, cwd = process.cwd()) {
  return Object.entries(trees)
    .map(([name, dir]) => `${name}=${path.relative(cwd, dir) || '.'}`)
    .join(' ');
}

/**
 * Runs one process per tree in turn (`turnOrder(Object.keys(trees), rounds)`), each to its end
 * before the next starts: `command(name, dir)` gives its [script, args]. Resolves to each run's
 * {tree, text} (its stdout); `onLine(tree, line)` sees the lines as they come. A run that fails
 * fails the whole.
 */
export async function runTreesInTurn(trees, rounds, command, { onLine, env = baseEnv() } = {}) {
  const out = [];
  for (const tree of turnOrder(Object.keys(trees), rounds)) {
    const [script, argv] = command(tree, trees[tree]);
    const child = spawn(process.execPath, [script, ...argv], { env, stdio: ['ignore', 'pipe', 'inherit'] });
    let text = '';
    let partial = '';
    child.stdout.setEncoding('utf8').on('data', (d) => {
      text += d;
      const lines = (partial + d).split('\n');
      partial = lines.pop();
      for (const l of lines) onLine?.(tree, l);
    });
    const code = await new Promise((resolve) => child.once('close', resolve));
    if (partial) onLine?.(tree, partial);
    if (code !== 0) throw new Error(`${tree} (${trees[tree]}): ${path.basename(script)} exited with ${code}`);
    out.push({ tree, text });
  }
  return out;
}
