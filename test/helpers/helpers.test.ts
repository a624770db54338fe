// The helpers start real servers; these tests make sure they do, and clean up after.
import { describe, expect, it } from 'vitest';
import { connect } from 'net';
import { existsSync } from 'node:fs';
import { startNats } from './nats.js';
import { startPrometheus } from './prometheus.js';
import { requireBinary, spawnProcess, stopLeftovers, tempDir, waitFor } from './process.js';

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

describe('test helpers', () => {
  it('requireBinary names the install command for a missing binary', () => {
    expect(() => requireBinary('segserve-no-such-binary', 'apt-get install -y segserve-no-such-binary')).toThrow(
      /segserve-no-such-binary is not installed; install it with: apt-get install -y segserve-no-such-binary/,
    );
  });

  it('spawnProcess waits for lines and reports an early exit', async () => {
    await using echo = spawnProcess(process.execPath, ['-e', 'console.log(JSON.stringify({msg:"serving",port:7})); setTimeout(()=>{}, 60000)']);
    const obj = await echo.waitForJson<{ port: number }>((o) => o['msg'] === 'serving', 10_000);
    expect(obj.port).toBe(7);
    const quitter = spawnProcess(process.execPath, ['-e', 'process.exit(3)']);
    await expect(quitter.waitForLine(/never/, 10_000)).rejects.toThrow(/exited \(code 3\)/);
  });

  it('stopLeftovers stops what a file started and left running (a start-up wait that gave up), not what has exited', async () => {
    const silent = spawnProcess(process.execPath, ['-e', 'setTimeout(()=>{}, 60000)']);
    const done = spawnProcess(process.execPath, ['-e', 'process.exit(0)']);
    await expect(silent.waitForJson((o) => o['msg'] === 'serving', 200)).rejects.toThrow();
    await done.exited;
    expect(silent.hasExited()).toBe(false);
    expect(await stopLeftovers()).toBe(1);
    expect(silent.hasExited()).toBe(true);
    expect(await stopLeftovers()).toBe(0);
  });

  it('tempDir is removed on dispose', async () => {
    let dirPath = '';
    {
      await using dir = await tempDir();
      dirPath = dir.path;
      expect(existsSync(dirPath)).toBe(true);
    }
    expect(existsSync(dirPath)).toBe(false);
  });

  it('startNats runs JetStream on a random port, restarts on the same port, and cleans up', async () => {
    const nats = await startNats();
    try {
      expect(nats.url).toMatch(/^nats:\/\/127\.0\.0\.1:\d+$/);
      expect(await canConnect(nats.port)).toBe(true);
      expect(nats.output()).toMatch(/Starting JetStream/);
      await nats.restart();
      expect(await canConnect(nats.port)).toBe(true);
    } finally {
      await nats[Symbol.asyncDispose]();
    }
    expect(await canConnect(nats.port)).toBe(false);
    expect(existsSync(nats.storeDir)).toBe(false);
  });

  it('startPrometheus scrapes a target and answers PromQL', async () => {
    await using prom = await startPrometheus({ targets: [], scrapeIntervalSeconds: 1 });
    await prom.setTargets([{ job: 'self', targets: [`127.0.0.1:${prom.port}`] }]);
    const up = await prom.waitForSeries('up{job="self"} == 1', 60_000);
    expect(up[0]?.metric['job']).toBe('self');
    await expect(prom.query('this is not promql')).rejects.toThrow(/prometheus query failed/);
    await waitFor(async () => (await prom.query('prometheus_build_info')).length > 0, { what: 'build info' });
  });
});
