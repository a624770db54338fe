// `segserve start` (what `npm start` runs): inference + gateway come up, the printed curl and
// gRPC commands work exactly as printed, and SIGINT (Ctrl-C) stops everything with exit 0.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { spawnSegserve, tempDir, waitFor, type Spawned, type TempDir } from '../helpers/process.js';

let start: Spawned;
let dir: TempDir;
let children: number[] = [];

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/** The command printed after `label` in the banner. */
function printed(label: string): string {
  const line = start.lines().find((l) => l.trimStart().startsWith(label));
  if (!line) throw new Error(`no '${label}' line in:\n${start.output()}`);
  return line.trimStart().slice(label.length).trim();
}

const run = (command: string): string => execFileSync('bash', ['-c', command], { cwd: dir.path, encoding: 'utf8', timeout: 60_000 });

beforeAll(async () => {
  dir = await tempDir('segserve-start-');
  start = spawnSegserve(['start'], { env: { SEGSERVE_HTTP_PORT: '0', SEGSERVE_GRPC_PORT: '0' }, name: 'segserve start' });
  await start.waitForLine(/Ctrl-C stops everything/, 180_000);
  children = execFileSync('ps', ['-o', 'pid=', '--ppid', String(start.pid)], { encoding: 'utf8' })
    .split('\n')
    .map((s) => Number(s.trim()))
    .filter((n) => n > 0);
});

afterAll(async () => {
  await start?.stop(30_000);
  for (const pid of children) if (alive(pid)) process.kill(pid, 'SIGKILL');
  await dir?.[Symbol.asyncDispose]();
});

describe('segserve start', () => {
  it('runs inference and gateway as two child processes and names the model', () => {
    expect(children).toHaveLength(2);
    expect(start.output()).toMatch(/segserve is running: model (facade-ads|tiny-seg) version \S+/);
  });

  it('serves the upload page at the printed URL', async () => {
    const url = printed('upload page');
    const res = await fetch(url);
    expect(res.status).toBe(200);
    expect(await res.text()).toContain('<title>segserve');
  });

  it('the printed curl commands work as printed', () => {
    const json = JSON.parse(run(printed('REST, JSON'))) as { version: string; classes: unknown[]; mask: string };
    expect(json.version).not.toBe('');
    expect(json.classes.length).toBeGreaterThanOrEqual(2);
    run(printed('REST, mask'));
    const mask = readFileSync(path.join(dir.path, 'mask.png'));
    expect(mask.subarray(1, 4).toString('latin1')).toBe('PNG');
    expect(Buffer.from(json.mask, 'base64')).toEqual(mask);
  });

  it('the printed gRPC command works as printed', () => {
    const out = JSON.parse(run(`rm -f mask.png && ${printed('gRPC')}`)) as { version: string; mask: string };
    expect(out.version).not.toBe('');
    expect(existsSync(path.join(dir.path, out.mask))).toBe(true);
  });

  it('Ctrl-C (SIGINT) stops the gateway and inference, then exits 0', async () => {
    start.kill('SIGINT');
    expect(await start.exited).toBe(0);
    await waitFor(() => children.every((pid) => !alive(pid)), { what: 'both children to exit', timeoutMs: 30_000 });
    expect(start.output()).toContain('stopped.');
  });
});
