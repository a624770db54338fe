// The supervisor on real child processes (node -e …): lines, the start-up line, the early-exit
// race, abort, stop with grace then kill, file output and adoption.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findBinary, parseJsonLine, requireBinary, supervise, Supervised, waitForHttp } from './supervisor.js';

const node = (script: string, options: { output?: { kind: 'file'; path: string } | { kind: 'pipe'; tee?: string }; name?: string } = {}): Supervised =>
  supervise({ command: process.execPath, args: ['-e', script], env: { PATH: process.env['PATH'] }, ...options });

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'segserve-supervisor-'));
});
afterAll(() => rm(dir, { recursive: true, force: true }));

describe('supervise (pipe output)', () => {
  it('collects stdout and stderr lines and finds past and future lines', async () => {
    await using p = node('console.log("one"); console.error("two"); setTimeout(() => console.log("three"), 100); setTimeout(() => {}, 60000)');
    expect(await p.waitForLine(/three/, { timeoutMs: 10_000 })).toBe('three');
    expect(await p.waitForLine(/one/)).toBe('one');
    expect(p.lines()).toEqual(expect.arrayContaining(['one', 'two', 'three']));
    expect(p.output()).toContain('two');
  });

  it('reads the start-up line with its ports', async () => {
    await using p = node('console.log(JSON.stringify({ level: "info", service: "gateway", msg: "listening", http_port: 8080, grpc_port: 9090 })); setTimeout(() => {}, 60000)');
    const line = await p.waitForStartup('gateway', { timeoutMs: 10_000 });
    expect([line.http_port, line.grpc_port]).toEqual([8080, 9090]);
  });

  it('rejects at once when the process exits before the line (early-exit race), with its output', async () => {
    const p = node('console.log("bad config"); process.exit(3)', { name: 'quitter' });
    const started = Date.now();
    await expect(p.waitForStartup('inference', { timeoutMs: 60_000 })).rejects.toThrow(/quitter exited \(code 3\)[\s\S]*bad config/);
    expect(Date.now() - started).toBeLessThan(30_000);
    expect(await p.exited).toBe(3);
  });

  it('times out naming the process', async () => {
    await using p = node('setTimeout(() => {}, 60000)', { name: 'silent' });
    await expect(p.waitForLine(/never/, { timeoutMs: 200 })).rejects.toThrow(/silent: waited 0.2 s for a line matching \/never\//);
  });

  it('gives up when the signal aborts', async () => {
    await using p = node('setTimeout(() => {}, 60000)');
    const ac = new AbortController();
    setTimeout(() => ac.abort(new Error('interrupted')), 100);
    await expect(p.waitForLine(/never/, { timeoutMs: 60_000, signal: ac.signal })).rejects.toThrow('interrupted');
  });

  it('stops with SIGTERM, and kills what ignores it after the grace time', async () => {
    const polite = node('process.on("SIGTERM", () => process.exit(0)); console.log("up"); setTimeout(() => {}, 60000)');
    await polite.waitForLine(/up/, { timeoutMs: 10_000 });
    expect(await polite.stop(5_000)).toBe(0);
    const stubborn = node('process.on("SIGTERM", () => {}); console.log("up"); setTimeout(() => {}, 60000)');
    await stubborn.waitForLine(/up/, { timeoutMs: 10_000 });
    expect(await stubborn.stop(300)).toBeNull(); // SIGKILL: no exit code
    expect(stubborn.hasExited()).toBe(true);
  });

  it('tees the output to a file', async () => {
    const tee = path.join(dir, 'tee.log');
    const p = node('console.log("to the file")', { output: { kind: 'pipe', tee } });
    await p.exited;
    await p.stop();
    expect(await readFile(tee, 'utf8')).toContain('to the file');
  });

  it('a missing binary is an exit, not a throw', async () => {
    const p = supervise({ command: '/nonexistent/segserve-binary', name: 'missing' });
    expect(await p.exited).toBe(-1);
    expect(p.output()).toMatch(/spawn error/);
  });
});

describe('supervise (file output) and adopt', () => {
  it('waits for a line the child writes to its log file, reading only what this process wrote', async () => {
    const log = path.join(dir, 'child.log');
    const first = node('console.log(JSON.stringify({ service: "inference", msg: "serving", grpc_port: 1111, metrics_port: 1112 }))', { output: { kind: 'file', path: log } });
    await first.exited;
    const second = node('setTimeout(() => console.log(JSON.stringify({ service: "inference", msg: "serving", grpc_port: 2221, metrics_port: 2222 })), 100); setTimeout(() => {}, 60000)', { output: { kind: 'file', path: log } });
    try {
      expect((await second.waitForStartup('inference', { timeoutMs: 10_000 })).grpc_port).toBe(2221);
      const adopted = Supervised.adopt(second.pid, log);
      expect(adopted).toBeDefined();
      expect(adopted!.hasExited()).toBe(false);
      await adopted!.stop(5_000);
      expect(await second.exited).toBeNull(); // ended by the adopter's SIGTERM
    } finally {
      await second.stop(1_000);
    }
  });

  it('a file-output child that exits early fails the wait with the end of its log', async () => {
    const log = path.join(dir, 'early.log');
    const p = node('console.log("cannot load the model"); process.exit(1)', { output: { kind: 'file', path: log }, name: 'inference' });
    await expect(p.waitForStartup('inference', { timeoutMs: 30_000 })).rejects.toThrow(/inference exited \(code 1\)[\s\S]*cannot load the model/);
  });

  it('adopt refuses a pid that is gone', () => {
    expect(Supervised.adopt(2 ** 22 + 12345, path.join(dir, 'x.log'))).toBeUndefined();
  });
});

describe('helpers', () => {
  it('finds binaries and names the install command of a missing one', () => {
    expect(findBinary('node', { PATH: path.dirname(process.execPath) })).toBe(process.execPath);
    expect(() => requireBinary('segserve-no-such-binary', 'apt-get install -y x')).toThrow(/segserve-no-such-binary is not installed; install it with: apt-get install -y x/);
  });

  it('parses JSON log lines only', () => {
    expect(parseJsonLine('{"msg":"a"}')).toEqual({ msg: 'a' });
    expect(parseJsonLine('{"msg":')).toBeUndefined();
    expect(parseJsonLine('[1]')).toBeUndefined();
    expect(parseJsonLine('plain')).toBeUndefined();
  });

  it('waitForHttp fails at once when the process behind the URL exits', async () => {
    const p = node('process.exit(4)', { name: 'server' });
    await p.exited;
    await expect(waitForHttp('http://127.0.0.1:9/', { timeoutMs: 60_000, process: p })).rejects.toThrow(/server exited \(code 4\)/);
  });
});
