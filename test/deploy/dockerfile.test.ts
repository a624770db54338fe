// The image cannot be built here (no Docker daemon): lint deploy/docker/Dockerfile instead —
// structure, pinned bases, non-root, tini as PID 1, the memory settings of docs/architecture.md#memory-and-admission-by-cost,
// and that everything it copies exists and is not excluded by .dockerignore.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../helpers/process.js';
import { INFERENCE_MALLOC_ENV } from '@segserve/runtime';

const DOCKERFILE = path.join(REPO_ROOT, 'deploy', 'docker', 'Dockerfile');

interface Instruction {
  readonly op: string;
  readonly args: string;
  readonly stage: number;
}

/** Instructions with line continuations joined and comments dropped; `stage` counts FROMs. */
export function parseDockerfile(text: string): Instruction[] {
  const logical: string[] = [];
  let current = '';
  for (const raw of text.split('\n')) {
    const line = raw.trimEnd();
    if (/^\s*#/.test(line) && current === '') continue;
    if (/^\s*#/.test(line)) continue; // a comment inside a continued instruction
    current += (current ? ' ' : '') + line.replace(/\\$/, '').trim();
    if (!line.endsWith('\\')) {
      if (current.trim()) logical.push(current.trim());
      current = '';
    }
  }
  let stage = -1;
  return logical.map((l) => {
    const [op = '', ...rest] = l.split(/\s+/);
    if (op.toUpperCase() === 'FROM') stage++;
    return { op: op.toUpperCase(), args: rest.join(' '), stage };
  });
}

const instructions = parseDockerfile(readFileSync(DOCKERFILE, 'utf8'));
const lastStage = Math.max(...instructions.map((i) => i.stage));
const final = instructions.filter((i) => i.stage === lastStage);
const argDefaults = Object.fromEntries(instructions.filter((i) => i.op === 'ARG' && i.args.includes('=')).map((i) => i.args.split('=') as [string, string]));
const resolve = (s: string): string => s.replace(/\$\{(\w+)\}|\$(\w+)/g, (_, a: string | undefined, b: string | undefined) => argDefaults[a ?? b ?? ''] ?? '');
const envOf = (ins: readonly Instruction[]): Record<string, string> =>
  Object.fromEntries(ins.filter((i) => i.op === 'ENV').flatMap((i) => [...i.args.matchAll(/(\w+)=("[^"]*"|\S+)/g)].map((m) => [m[1]!, m[2]!.replace(/^"|"$/g, '')])));

describe('deploy/docker/Dockerfile', () => {
  it('is multi-stage on a pinned node:20 slim base; no latest anywhere', () => {
    const froms = instructions.filter((i) => i.op === 'FROM');
    expect(froms.length).toBeGreaterThanOrEqual(2);
    for (const f of froms) {
      const image = resolve(f.args.split(/\s+/)[0]!);
      expect(image).toMatch(/^node:20\.\d+\.\d+-(bookworm|bullseye)-slim(@sha256:[0-9a-f]{64})?$/);
    }
    expect(readFileSync(DOCKERFILE, 'utf8')).not.toMatch(/:latest\b/);
    expect(instructions.some((i) => i.op === 'ADD' && /https?:\/\//.test(i.args))).toBe(false);
  });

  it('runs as a numeric non-root user, with tini as PID 1 in exec form', () => {
    const user = final.filter((i) => i.op === 'USER').at(-1)?.args ?? 'root';
    const uid = Number(user.split(':')[0]);
    expect(Number.isInteger(uid) && uid > 0, `USER ${user}`).toBe(true);
    const entrypoint = JSON.parse(final.filter((i) => i.op === 'ENTRYPOINT').at(-1)?.args ?? 'null') as string[] | null;
    expect(entrypoint?.[0]).toMatch(/(^|\/)tini$/);
    expect(entrypoint).toContain('--');
    expect(entrypoint?.at(-1)).toBe('/app/packages/cli/dist/bin.js');
    expect(final.some((i) => i.op === 'RUN' && /apt-get install[^&]*\btini\b/.test(i.args))).toBe(true);
    // One image, three services: CMD defaults to one, the manifests choose with args.
    expect(['inference', 'gateway', 'promoter']).toContain((JSON.parse(final.find((i) => i.op === 'CMD')?.args ?? '[]') as string[])[0]);
  });

  it('sets the inference malloc tuning (MALLOC_ARENA_MAX, MALLOC_MMAP_THRESHOLD_) and a V8 heap cap that leaves room for native memory in 512 MiB', () => {
    const env = envOf(final);
    for (const [k, v] of Object.entries(INFERENCE_MALLOC_ENV)) expect(env[k], k).toBe(v);
    const heap = Number(/--max-old-space-size=(\d+)/.exec(env['NODE_OPTIONS'] ?? '')?.[1]);
    expect(heap).toBeGreaterThanOrEqual(96);
    expect(heap).toBeLessThanOrEqual(256);
    expect(env['NODE_ENV']).toBe('production');
  });

  it('installs with npm ci and the onnxruntime download skipped, manifests before sources', () => {
    // Through the environment, not .npmrc: an unknown .npmrc key makes npm warn on every call.
    expect(readFileSync(path.join(REPO_ROOT, '.npmrc'), 'utf8')).not.toMatch(/onnxruntime/);
    const workspaces = (JSON.parse(readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as { workspaces: string[] }).workspaces;
    for (const stage of new Set(instructions.filter((i) => i.op === 'RUN' && /npm ci/.test(i.args)).map((i) => i.stage))) {
      const ins = instructions.filter((i) => i.stage === stage);
      const ciAt = ins.findIndex((i) => i.op === 'RUN' && /npm ci/.test(i.args));
      const before = ins.slice(0, ciAt);
      expect(envOf(before)['ONNXRUNTIME_NODE_INSTALL']).toBe('skip');
      const copied = before.filter((i) => i.op === 'COPY').map((i) => i.args).join(' ');
      for (const f of ['.npmrc', 'package.json', 'package-lock.json', ...workspaces.map((w) => `${w}/package.json`)]) expect(copied, `stage ${stage} copies ${f} before npm ci`).toContain(f);
      // Sources come after the dependency layer, so it is cached across code changes.
      expect(before.some((i) => i.op === 'COPY' && /^(proto|services|packages)\/\s/.test(i.args))).toBe(false);
    }
    expect(instructions.some((i) => i.op === 'RUN' && /npm ci --omit=dev/.test(i.args))).toBe(true);
    for (const i of instructions.filter((x) => x.op === 'RUN' && /apt-get install/.test(x.args))) {
      expect(i.args).toContain('--no-install-recommends');
      expect(i.args).toContain('rm -rf /var/lib/apt/lists');
    }
  });

  it('copies only what exists and .dockerignore lets through; exposes the ports of docs/architecture.md#commands-and-environment', () => {
    const ignore = readFileSync(path.join(REPO_ROOT, '.dockerignore'), 'utf8');
    for (const i of instructions.filter((x) => x.op === 'COPY' && !x.args.includes('--from='))) {
      const parts = i.args.split(/\s+/).filter((p) => !p.startsWith('--'));
      for (const src of parts.slice(0, -1)) {
        expect(existsSync(path.join(REPO_ROOT, src)), `COPY ${src}`).toBe(true);
        const top = src.split('/')[0]!;
        const excluded = new RegExp(`^${top.replace('.', '\\.')}$`, 'm').test(ignore);
        expect(excluded, `${src} is excluded by .dockerignore`).toBe(false);
      }
    }
    // The build context leaves out what the image must not carry.
    for (const p of ['**/node_modules', '**/dist', '.git', 'models/*/*', '!models/*/golden', '!models/*/golden-*']) expect(ignore.split('\n')).toContain(p);
    const exposed = final.filter((i) => i.op === 'EXPOSE').flatMap((i) => i.args.split(/\s+/)).map(Number).sort();
    expect(exposed).toEqual([50051, 8080, 9090, 9100, 9102].sort());
  });

  it('the parser can fail: a root image without tini is caught', () => {
    const bad = parseDockerfile('FROM node:latest\nUSER root\nENTRYPOINT ["node", "x.js"]\n');
    expect(bad.find((i) => i.op === 'USER')?.args).toBe('root');
    expect(bad[0]?.args).toMatch(/latest/);
    expect(JSON.parse(bad.find((i) => i.op === 'ENTRYPOINT')!.args)[0]).not.toMatch(/tini/);
  });
});
