// The repository stands on its own: nothing in it cites a design, style, team or test-plan
// document that lives outside it, and every `docs/architecture.md#<anchor>` and
// `docs/reliability.md item <n>` it cites exists (docs/architecture.md#tests). Runs in the unit
// project: a fast grep over the tracked files. And the README stays short.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const BINARY = /\.(png|jpe?g|webp|gif|onnx|pt|bin|ico|woff2?)$/i;

function trackedTextFiles(): { file: string; text: string }[] {
  const out = execFileSync('git', ['ls-files', '-z'], { cwd: ROOT, encoding: 'utf8', maxBuffer: 64 << 20 });
  return out
    .split('\0')
    .filter((f) => f !== '' && !BINARY.test(f) && !f.startsWith('proto/src/generated/'))
    .flatMap((file) => {
      let text: string;
      try {
        text = readFileSync(path.join(ROOT, file), 'utf8');
      } catch {
        return []; // deleted in the work tree, not yet committed
      }
      return text.includes('\0') ? [] : [{ file, text }];
    });
}

/** GitHub's heading anchor: lower case, punctuation dropped, spaces to hyphens. */
function slug(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s_-]/gu, '')
    .replace(/\s/g, '-');
}

function anchorsOf(markdown: string): Set<string> {
  const anchors = new Set<string>();
  let fenced = false;
  for (const line of markdown.split('\n')) {
    if (/^\s*```/.test(line)) fenced = !fenced;
    const m = fenced ? null : /^#{1,6}\s+(.*)$/.exec(line);
    if (m?.[1] !== undefined) anchors.add(slug(m[1]));
  }
  return anchors;
}

function hits(files: { file: string; text: string }[], re: RegExp): string[] {
  return files.flatMap(({ file, text }) =>
    text.split('\n').flatMap((line, i) => [...line.matchAll(re)].map((m) => `${file}:${i + 1}: ${m[0]}`)),
  );
}

const files = trackedTextFiles();

describe('the README and docs/', () => {
  const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');

  it('the README stays a guide a person reads: at most 12 KB (details belong in docs/)', () => {
    expect(Buffer.byteLength(readme)).toBeLessThanOrEqual(12 * 1024);
  });

  it('every relative Markdown link of the README and docs/*.md points at a file (and an anchor of it) that exists', () => {
    const pages = files.filter((f) => f.file === 'README.md' || /^docs\/[^/]+\.md$/.test(f.file));
    const broken = pages.flatMap(({ file, text }) =>
      [...text.replace(/```[\s\S]*?```/g, '').matchAll(/\]\(([^)\s]+)\)/g)].flatMap((m) => {
        const target = m[1] ?? '';
        if (/^[a-z]+:/i.test(target)) return []; // http(s), mailto
        const [rel = '', anchor] = target.split('#');
        const resolved = rel === '' ? file : path.normalize(path.join(path.dirname(file), rel));
        if (!existsSync(path.join(ROOT, resolved))) return [`${file}: ${target}`];
        if (anchor !== undefined && resolved.endsWith('.md') && !anchorsOf(readFileSync(path.join(ROOT, resolved), 'utf8')).has(anchor)) return [`${file}: ${target} (no such heading)`];
        return [];
      }),
    );
    expect(pages.length).toBeGreaterThan(3);
    expect(broken).toEqual([]);
  });

  it('every `npx segserve <command>` the README prints is a command of the segserve table', () => {
    const commands = new Set([...readFileSync(path.join(ROOT, 'packages/cli/src/commands.ts'), 'utf8').matchAll(/^ {2}([a-z]+): \{ summary:/gm)].map((m) => m[1]));
    const printed = [...readme.matchAll(/npx segserve ([a-z-]+)/g)].map((m) => m[1] ?? '');
    expect(commands.size).toBeGreaterThan(5);
    expect(printed.length).toBeGreaterThan(5);
    expect(printed.filter((c) => !commands.has(c))).toEqual([]);
  });
});

describe('the repository cites only itself', () => {
  it('finds the tracked files', () => {
    expect(files.some((f) => f.file === 'docs/architecture.md')).toBe(true);
  });

  it('cites no design, style, team or test-plan document from outside the repository', () => {
    // Upper-case file names of the documents segserve started from; the repository's own are
    // docs/architecture.md and docs/reliability.md.
    const outside = new RegExp(String.raw`\b(?:${['DESIGN', 'STYLE', 'TEAM', 'RELIABILITY'].join('|')})(?:\.md\b| \d| §)`, 'g');
    expect(hits(files, outside)).toEqual([]);
    // …nor a bare section sign and number of one; RFC sections ("RFC 1951 §3.2.5") are fine.
    expect(hits(files, /(?<!RFC \d+ )§\s?\d+/g)).toEqual([]);
  });

  it('names no path of the machine it was developed on: every command it gives is one a reader can run from the repository', () => {
    expect(hits(files, /\/work\/[\w.-]+/g)).toEqual([]);
  });

  it('every anchor of docs/architecture.md it cites is one of its headings', () => {
    const anchors = anchorsOf(readFileSync(path.join(ROOT, 'docs/architecture.md'), 'utf8'));
    const cited = /architecture\.md#([\p{L}\p{N}_-]+)((?:, #[\p{L}\p{N}_-]+)*)/gu;
    const missing = files.flatMap(({ file, text }) =>
      [...text.matchAll(cited)].flatMap((m) => {
        const names = [m[1] ?? '', ...(m[2] ?? '').split(', #').slice(1)];
        return names.filter((a) => !anchors.has(a)).map((a) => `${file}: #${a}`);
      }),
    );
    expect(missing).toEqual([]);
  });

  it('every docs/reliability.md item it cites is an item of docs/reliability.md', () => {
    const plan = readFileSync(path.join(ROOT, 'docs/reliability.md'), 'utf8');
    const items = new Set([...plan.matchAll(/^\| (\d+) \|/gm)].map((m) => Number(m[1])));
    const cited = /reliability\.md items? (\d+(?:[–-]\d+)?(?:(?:, | and )\d+(?:[–-]\d+)?)*)/g;
    const missing = files.flatMap(({ file, text }) =>
      [...text.matchAll(cited)].flatMap((m) =>
        (m[1] ?? '').split(/, | and /).flatMap((part) => {
          const [a, b] = part.split(/[–-]/).map(Number);
          const nums: number[] = [];
          for (let n = a ?? 0; n <= (b ?? a ?? 0); n++) nums.push(n);
          return nums.filter((n) => !items.has(n)).map((n) => `${file}: item ${n}`);
        }),
      ),
    );
    expect(items.size).toBeGreaterThan(0);
    expect(missing).toEqual([]);
  });
});
