// Starts the real nats-server with deploy/nats/nats.conf exactly as shipped, except for the
// JetStream store directory (a temp dir) and the listen address/ports (loopback, random).
import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { NATS_INSTALL_HINT } from '../helpers/nats.js';
import { requireBinary, spawnProcess, tempDir, REPO_ROOT, type Spawned, type TempDir } from '../helpers/process.js';

export const NATS_CONF = path.join(REPO_ROOT, 'deploy', 'nats', 'nats.conf');

/** The users of deploy/nats/nats.conf and the environment variable holding each password. */
export const NATS_USERS = {
  gateway: 'GATEWAY_PASSWORD',
  inference: 'INFERENCE_PASSWORD',
  promoter: 'PROMOTER_PASSWORD',
  publisher: 'PUBLISHER_PASSWORD',
  observer: 'OBSERVER_PASSWORD',
} as const;
export type NatsUserName = keyof typeof NATS_USERS;

export interface DeployedNats extends AsyncDisposable {
  readonly port: number;
  readonly passwords: Readonly<Record<NatsUserName, string>>;
  /** nats://user:password@127.0.0.1:port */
  urlFor(user: NatsUserName): string;
  output(): string;
}

/**
 * A password in the form docs/deploy.md tells operators to generate. nats-server parses an
 * environment variable's value as a configuration value, so it must start with a letter
 * ("2f…" is a parse error, "true" a boolean) and stay within [A-Za-z0-9].
 */
export function natsPassword(): string {
  return `p${randomBytes(18).toString('hex')}`;
}

export async function startDeployedNats(): Promise<DeployedNats> {
  const binary = requireBinary('nats-server', NATS_INSTALL_HINT);
  const dir: TempDir = await tempDir('segserve-deploy-nats-');
  const original = await readFile(NATS_CONF, 'utf8');
  const storeLine = /^(\s*store_dir:\s*)\/data\/jetstream\s*$/m;
  if (!storeLine.test(original)) throw new Error(`${NATS_CONF}: no 'store_dir: /data/jetstream' line to point at a temp dir`);
  const config = original.replace(storeLine, `$1${JSON.stringify(path.join(dir.path, 'js'))}`);
  const configFile = path.join(dir.path, 'nats.conf');
  await writeFile(configFile, config);
  const passwords = Object.fromEntries(Object.keys(NATS_USERS).map((u) => [u, natsPassword()])) as Record<NatsUserName, string>;
  const env = Object.fromEntries(Object.entries(NATS_USERS).map(([user, variable]) => [variable, passwords[user as NatsUserName]]));
  // -1: nats-server picks free ports; the log line tells which.
  const server: Spawned = spawnProcess(binary, ['-c', configFile, '-a', '127.0.0.1', '-p', '-1', '-m', '-1'], { env, name: 'nats-server (deploy config)' });
  const line = await server.waitForLine(/Listening for client connections on/, 30_000);
  const port = Number(/:(\d+)\s*$/.exec(line)?.[1]);
  await server.waitForLine(/Server is ready/, 30_000);
  return {
    port,
    passwords,
    urlFor: (user) => `nats://${user}:${passwords[user]}@127.0.0.1:${port}`,
    output: () => server.output(),
    [Symbol.asyncDispose]: async () => {
      await server.stop(10_000);
      await dir[Symbol.asyncDispose]();
    },
  };
}
