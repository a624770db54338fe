import { connect, type ClientHttp2Session } from 'node:http2';
import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { UPLOAD_RECEIVE_WINDOWS, bindWithReceiveWindows } from './http2-windows.js';

const servers: grpc.Server[] = [];
afterEach(() => {
  for (const s of servers.splice(0)) s.forceShutdown();
});

/** What a client sees of the server's windows: its SETTINGS and its connection window. */
async function windowsSeenBy(port: number): Promise<{ stream: number | undefined; connection: number }> {
  const session: ClientHttp2Session = connect(`http://127.0.0.1:${port}`);
  try {
    await new Promise<void>((resolve, reject) => {
      session.once('remoteSettings', () => resolve());
      session.once('error', reject);
    });
    // The WINDOW_UPDATE for the connection follows the SETTINGS frame.
    const deadline = Date.now() + 300;
    while (session.state.remoteWindowSize === 65_535 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    return { stream: session.remoteSettings.initialWindowSize, connection: session.state.remoteWindowSize ?? 0 };
  } finally {
    session.destroy();
  }
}

describe('bindWithReceiveWindows', () => {
  it("announces the stream window and widens every connection's window", async () => {
    const server = new grpc.Server();
    servers.push(server);
    const { port, windowsApplied } = await bindWithReceiveWindows(server, '127.0.0.1:0', grpc.ServerCredentials.createInsecure());
    expect(windowsApplied).toBe(true);
    for (let i = 0; i < 2; i++) {
      expect(await windowsSeenBy(port)).toEqual({ stream: UPLOAD_RECEIVE_WINDOWS.streamBytes, connection: UPLOAD_RECEIVE_WINDOWS.connectionBytes });
    }
  });

  it("a plain bindAsync keeps Node's 64 KiB windows (what the helper changes)", async () => {
    const server = new grpc.Server();
    servers.push(server);
    const port = await new Promise<number>((resolve, reject) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))));
    const seen = await windowsSeenBy(port);
    expect(seen.connection).toBe(65_535);
    expect(seen.stream ?? 65_535).toBe(65_535);
  });
});
