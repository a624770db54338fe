// A real nats-server with JetStream on a random loopback port and a temp store, for tests.
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { requireBinary, spawnProcess, tempDir, type Spawned, type TempDir } from './process.js';

export const NATS_INSTALL_HINT = 'apt-get install -y nats-server (or: bash scripts/setup.sh)';

export interface NatsUser {
  readonly user: string;
  readonly password: string;
  /** Subjects this user may publish / subscribe to; omitted = everything. */
  readonly publish?: readonly string[];
  readonly subscribe?: readonly string[];
}

export interface StartNatsOptions {
  readonly jetstream?: boolean;
  readonly users?: readonly NatsUser[];
  /** Extra nats-server configuration text appended to the generated config. */
  readonly extraConfig?: string;
}

export interface NatsServer extends AsyncDisposable {
  readonly url: string;
  readonly port: number;
  readonly storeDir: string;
  /** URL with credentials for one of the configured users. */
  urlFor(user: string): string;
  /** Stops the server (SIGTERM) and starts it again on the same port with the same store. */
  restart(): Promise<void>;
  /** Stops the server; `restart()` can bring it back. */
  stop(): Promise<void>;
  output(): string;
}

function quote(s: string): string {
  return JSON.stringify(s);
}

function renderConfig(port: number, storeDir: string, options: StartNatsOptions): string {
  const lines = [`listen: 127.0.0.1:${port}`, 'server_name: segserve_test'];
  if (options.jetstream !== false) lines.push(`jetstream { store_dir: ${quote(storeDir)}, max_memory_store: 256MB, max_file_store: 64GB }`);
  if (options.users?.length) {
    const users = options.users.map((u) => {
      const perms: string[] = [];
      if (u.publish) perms.push(`publish: [${u.publish.map(quote).join(', ')}]`);
      if (u.subscribe) perms.push(`subscribe: [${u.subscribe.map(quote).join(', ')}]`);
      const permissions = perms.length ? `, permissions: { ${perms.join(', ')} }` : '';
      return `    { user: ${quote(u.user)}, password: ${quote(u.password)}${permissions} }`;
    });
    lines.push(`authorization {\n  users: [\n${users.join(',\n')}\n  ]\n}`);
  }
  if (options.extraConfig) lines.push(options.extraConfig);
  return lines.join('\n') + '\n';
}

/** Starts nats-server (JetStream on by default) on a random port; waits until it is ready. */
export async function startNats(options: StartNatsOptions = {}): Promise<NatsServer> {
  const binary = requireBinary('nats-server', NATS_INSTALL_HINT);
  const dir: TempDir = await tempDir('segserve-nats-');
  const storeDir = path.join(dir.path, 'jetstream');
  const configFile = path.join(dir.path, 'nats.conf');
  let port = 0;
  let server: Spawned | undefined;
  const outputs: string[] = [];

  const launch = async (): Promise<void> => {
    // Port -1 lets nats-server pick a free port; restarts reuse the port it picked.
    await writeFile(configFile, renderConfig(port === 0 ? -1 : port, storeDir, options));
    server = spawnProcess(binary, ['-c', configFile], { name: 'nats-server' });
    const line = await server.waitForLine(/Listening for client connections on/, 30_000);
    const match = /:(\d+)\s*$/.exec(line);
    if (!match?.[1]) throw new Error(`nats-server: cannot read the port from '${line}'`);
    port = Number(match[1]);
    await server.waitForLine(/Server is ready/, 30_000);
  };

  const stop = async (): Promise<void> => {
    if (server && !server.hasExited()) {
      await server.stop(10_000);
      outputs.push(server.output());
    }
  };

  await launch();
  const url = `nats://127.0.0.1:${port}`;
  return {
    url,
    port,
    storeDir,
    urlFor: (user: string) => {
      const u = options.users?.find((x) => x.user === user);
      if (!u) throw new Error(`no NATS user '${user}' configured`);
      return `nats://${encodeURIComponent(u.user)}:${encodeURIComponent(u.password)}@127.0.0.1:${port}`;
    },
    restart: async () => {
      await stop();
      await launch();
    },
    stop,
    output: () => outputs.join('') + (server?.output() ?? ''),
    [Symbol.asyncDispose]: async () => {
      await stop();
      await dir[Symbol.asyncDispose]();
    },
  };
}
