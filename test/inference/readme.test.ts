// The example gRPC client works: a spawned `segserve inference` on a bundled tiny model,
// called with the example grpc-js client (services/inference/examples/segment.mjs).

import { describe, expect, it } from 'vitest';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';
import { REPO_ROOT, spawnProcess, spawnSegserve, tempDir } from '../helpers/process.js';
import { GOLDEN_TINY, MODELS } from './helpers.js';

describe('example gRPC client', () => {
  it('the example client segments an image through a server on the tiny model', async () => {
    await using server = spawnSegserve(['inference', '--model', path.relative(REPO_ROOT, MODELS.seg), '--grpc-port', '0', '--metrics-port', '0'], { env: { SEGSERVE_HOST: '127.0.0.1' } });
    const { grpc_port: port } = await server.waitForStartup('inference');
    await using tmp = await tempDir('segserve-readme-');
    const mask = path.join(tmp.path, 'mask.png');
    await using client = spawnProcess(process.execPath, [path.join(REPO_ROOT, 'services/inference/examples/segment.mjs'), `127.0.0.1:${port}`, path.join(GOLDEN_TINY, 'images', 'facade-01.jpg'), mask], { name: 'example client' });
    expect(await client.exited).toBe(0);
    expect(client.output()).toMatch(/^tiny-seg\/1 150x100 in [\d.]+ ms -> /m);
    expect(client.output()).toMatch(/advertising\s+[\d.]+%/);
    const meta = await sharp(await readFile(mask)).metadata();
    expect([meta.width, meta.height, meta.channels]).toEqual([150, 100, 1]);
  });
});
