// The deployed NATS configuration with the real services: inference loads its model from the
// object store as user `inference`, the gateway follows the rollout state as user `gateway`,
// each with the credentials in SEGSERVE_NATS_URL exactly as the Deployments compose it
// (nats://<user>:<password>@nats:4222), and a request goes through.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { Kvm } from '@nats-io/kv';
import { Objm } from '@nats-io/obj';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { NATS_NAMES } from '@segserve/proto';
import { ensureNatsObjects } from '../../services/promoter/src/adapters/nats-setup.js';
import { generateSigningKeys } from '../../services/promoter/src/adapters/signing.js';
import { REPO_ROOT, spawnSegserve, tempDir, waitFor, type TempDir } from '../helpers/process.js';
import { postImage, startGatewayProc, tinySeg, TINY_IMAGES, type GatewayProc } from '../gateway/stack.js';
import { startDeployedNats, type DeployedNats, type NatsUserName } from './nats-server.js';

let nats: DeployedNats;
let scratch: TempDir;
const connections: NatsConnection[] = [];
const procs: AsyncDisposable[] = [];

async function login(user: NatsUserName): Promise<NatsConnection> {
  const nc = await connect({ servers: `nats://127.0.0.1:${nats.port}`, user, pass: nats.passwords[user], timeout: 10_000 });
  connections.push(nc);
  return nc;
}

beforeAll(async () => {
  nats = await startDeployedNats();
  scratch = await tempDir('segserve-nats-services-');
  await ensureNatsObjects(await login('promoter'));
  // What `segserve publish` uploads, as the publisher.
  const store = await new Objm(await login('publisher')).open(NATS_NAMES.modelsObjectStore);
  for (const file of ['model.json', 'model.onnx']) await store.putBlob({ name: `tiny-seg/1/${file}` }, new Uint8Array(await readFile(path.join(tinySeg('1'), file))));
}, 120_000);

afterAll(async () => {
  for (const p of procs.reverse()) await p[Symbol.asyncDispose]();
  for (const nc of connections) await nc.close().catch(() => undefined);
  await nats?.[Symbol.asyncDispose]();
  await scratch?.[Symbol.asyncDispose]();
});

describe('services on deploy/nats/nats.conf', () => {
  let inferenceAddress = '';
  let gateway: GatewayProc;

  it('inference loads its model from the object store as user inference', async () => {
    // No --model directory: the object store is the only source.
    const proc = spawnSegserve(['inference'], {
      env: {
        SEGSERVE_HOST: '127.0.0.1',
        SEGSERVE_GRPC_PORT: '0',
        SEGSERVE_METRICS_PORT: '0',
        SEGSERVE_NATS_URL: nats.urlFor('inference'),
        SEGSERVE_MODEL_NAME: 'tiny-seg',
        SEGSERVE_MODEL_VERSION: '1',
        SEGSERVE_MODEL_CACHE_DIR: path.join(scratch.path, 'cache'),
      },
      name: 'inference (object store)',
    });
    procs.push(proc);
    const serving = await proc.waitForStartup('inference', 90_000);
    expect(serving.version).toBe('1');
    inferenceAddress = `127.0.0.1:${serving.grpc_port}`;
    expect(proc.output()).not.toContain(nats.passwords.inference);
  });

  it('the gateway follows the rollout state as user gateway and serves through it', async () => {
    await (await new Kvm(await login('promoter')).open(NATS_NAMES.rolloutsKv)).put(
      'tiny-seg',
      JSON.stringify({ model: 'tiny-seg', stable: { version: '1', sha256: '', target: `ipv4:${inferenceAddress}` }, canary: null, phase: 'Idle', updated_at: new Date().toISOString(), revision: 1 }),
    );
    gateway = await startGatewayProc({ SEGSERVE_NATS_URL: nats.urlFor('gateway') });
    procs.push(gateway);
    await waitFor(async () => (await fetch(`${gateway.base}/readyz`)).ok, { timeoutMs: 60_000, intervalMs: 500, what: 'gateway ready' });
    const res = await postImage(gateway.base, 'tiny-seg', await readFile(path.join(TINY_IMAGES, 'facade-01.jpg')));
    expect(res.status).toBe(200);
    expect(Buffer.from(await res.arrayBuffer()).subarray(1, 4).toString()).toBe('PNG');
    expect(gateway.proc.output()).not.toContain(nats.passwords.gateway);
  });

  // nats.js ignores a URL's user info: every process splits the credentials out of
  // SEGSERVE_NATS_URL with proto's parseNatsUrl, or per-service users fail with "Authorization
  // Violation" in Kubernetes.
  it('the promoter starts as user promoter', async () => {
    await using dir = await tempDir('segserve-promoter-');
    const proc = spawnSegserve(['promoter'], {
      env: { SEGSERVE_NATS_URL: nats.urlFor('promoter'), SEGSERVE_DEPLOYER: 'local', SEGSERVE_METRICS_PORT: '0', SEGSERVE_MODEL_ROOTS: dir.path },
      name: 'promoter',
    });
    procs.push(proc);
    await proc.waitForStartup('promoter', 60_000);
    expect(proc.output()).not.toContain(nats.passwords.promoter);
  }, 120_000);

  it('`segserve rollback` as user observer reaches the promoter running as user promoter', async () => {
    // Nothing to roll back yet: the answer must come from the promoter (not a permissions
    // violation, not a timeout for want of a responder).
    const cli = spawnSegserve(['rollback', 'tiny-seg', '--reason', 'drill'], { env: { SEGSERVE_NATS_URL: nats.urlFor('observer') }, name: 'rollback' });
    await cli.exited;
    expect(cli.output()).not.toMatch(/permission|no responders|timeout/i);
    expect(cli.output()).toMatch(/tiny-seg/);
  }, 60_000);

  it('`segserve publish` works as user publisher (the CI publish job)', async () => {
    const keys = generateSigningKeys();
    const cli = spawnSegserve(['publish', '--model', path.join(REPO_ROOT, 'models', 'facade-ads', '3'), '--id', 'ci-publisher-check', '--json'], {
      env: { SEGSERVE_NATS_URL: nats.urlFor('publisher'), SEGSERVE_SIGNING_SEED: keys.seed },
      name: 'publish',
    });
    expect(await cli.exited, cli.output()).toBe(0);
    expect(cli.output()).toContain('ci-publisher-check');
    expect(cli.output()).not.toContain(nats.passwords.publisher);
    expect(cli.output()).not.toContain(keys.seed);
  }, 60_000);

  it('`segserve rollout status` works as user observer (the CI canary job)', async () => {
    const cli = spawnSegserve(['rollout', 'status', 'tiny-seg', '--json'], { env: { SEGSERVE_NATS_URL: nats.urlFor('observer') }, name: 'rollout status' });
    expect(await cli.exited, cli.output()).toBe(0);
    expect(cli.output()).toContain('"phase":"Idle"');
  }, 60_000);
});
