import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));

describe('writeLogLine', () => {
  it('keeps the process alive when the stdout reader goes away', async () => {
    // The child logs forever through the built module; we close its stdout after the first
    // line and expect it to keep running (it exits 0 by itself after 300 ms).
    const mod = path.join(here, '..', 'dist', 'log-line.js');
    const child = spawn(process.execPath, ['--input-type=module', '-e', `
      import { writeLogLine } from ${JSON.stringify(mod)};
      const t = setInterval(() => writeLogLine('{"msg":"tick"}\\n'), 5);
      setTimeout(() => { clearInterval(t); process.exit(0); }, 300);
    `], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
    child.stdout.destroy();
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    expect(stderr).not.toMatch(/EPIPE/);
    expect(code).toBe(0);
  });
});
