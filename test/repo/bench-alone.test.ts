// bench/alone.sh, the wrapper the recorded benchmark figures name: it stops the processes listed
// in SEGSERVE_PAUSE_PIDS while the benchmark runs, resumes them after, and passes the benchmark's
// exit code on. Runs in the unit project: a shell script and two `sleep`s.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const ALONE = path.join(ROOT, 'bench', 'alone.sh');

const state = (pid: number): string => /^State:\s+(\S)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? '?';

let dir = '';
const sleepers: { kill(): boolean }[] = [];
afterEach(() => {
  for (const s of sleepers.splice(0)) s.kill();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('bench/alone.sh', () => {
  it('stops the listed processes while the command runs and resumes them after; the exit code is the command’s; the command does not see SEGSERVE_PAUSE_PIDS', () => {
    dir = mkdtempSync(path.join(os.tmpdir(), 'alone-'));
    const sleeper = spawn('sleep', ['60'], { stdio: 'ignore' });
    sleepers.push(sleeper);
    const pids = path.join(dir, 'pids');
    writeFileSync(pids, `${sleeper.pid}\n`);
    const r = spawnSync('bash', [ALONE, 'bash', '-c', `grep '^State' /proc/${sleeper.pid}/status; echo "pause=\${SEGSERVE_PAUSE_PIDS-unset}"; exit 7`], {
      env: { ...process.env, SEGSERVE_PAUSE_PIDS: pids, ALONE_PRIO: '0', ALONE_LOCK: path.join(dir, 'lock') },
      encoding: 'utf8',
    });
    expect(r.stdout).toMatch(/State:\s+T/); // stopped during the run
    // the services' configuration refuses an unknown SEGSERVE_ variable: the wrapper keeps its own
    expect(r.stdout).toContain('pause=unset');
    expect(r.status).toBe(7);
    expect(state(sleeper.pid!)).not.toBe('T'); // running again after it
  });

  it('refuses to run without a command', () => {
    const r = spawnSync('bash', [ALONE], { encoding: 'utf8' });
    expect(r.status).toBe(2);
    expect(r.stderr).toMatch(/usage: bash bench\/alone\.sh/);
  });
});
