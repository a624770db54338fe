// The first minutes on a fresh clone: npm without warnings, and a busy port named with the
// variable that moves it before `npm start` does any set-up work.
import { spawnSync } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const CHECK = path.join(REPO_ROOT, 'scripts/check-ports.mjs');

const listen = (): Promise<net.Server> =>
  new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen({ host: '127.0.0.1', port: 0 }, () => resolve(s));
  });
const portOf = (s: net.Server): number => (s.address() as net.AddressInfo).port;
const check = (env: Record<string, string>) => spawnSync(process.execPath, [CHECK], { env: { PATH: process.env['PATH'] ?? '', SEGSERVE_HOST: '127.0.0.1', ...env }, encoding: 'utf8' });

describe('npm in this repository', () => {
  it('prints no config warning (the onnxruntime switch goes through the environment)', () => {
    const r = spawnSync('npm', ['config', 'get', 'fund'], { cwd: REPO_ROOT, encoding: 'utf8' });
    expect(r.status).toBe(0);
    expect(r.stderr).not.toMatch(/warn/i);
  });
});

describe('npm start checks its ports first', () => {
  it('passes when both ports are free', async () => {
    const [a, b] = [await listen(), await listen()];
    const free = [portOf(a), portOf(b)];
    await Promise.all([a, b].map((s) => new Promise((r) => s.close(r))));
    const r = check({ SEGSERVE_HTTP_PORT: String(free[0]), SEGSERVE_GRPC_PORT: String(free[1]) });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
  });

  it.each(['SEGSERVE_HTTP_PORT', 'SEGSERVE_GRPC_PORT'])('names %s when its port is taken, and the command that moves it', async (variable) => {
    const busy = await listen();
    try {
      const port = portOf(busy);
      const r = check({ SEGSERVE_HTTP_PORT: '0', SEGSERVE_GRPC_PORT: '0', [variable]: String(port) });
      expect(r.status).toBe(1);
      expect(r.stderr).toContain(`port ${port} on 127.0.0.1`);
      expect(r.stderr).toContain('already in use');
      expect(r.stderr).toContain(`${variable}=${port + 1} npm start`);
    } finally {
      await new Promise((r) => busy.close(r));
    }
  });

  it('refuses a value that is not a port', () => {
    const r = check({ SEGSERVE_HTTP_PORT: 'eighty', SEGSERVE_GRPC_PORT: '0' });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('SEGSERVE_HTTP_PORT=eighty is not a port number');
  });
});
