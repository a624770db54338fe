import { afterEach, describe, expect, it } from 'vitest';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { once } from 'node:events';
import { discardUnreadBody } from './unread-body.js';

const MiB = 2 ** 20;
let server: http.Server | undefined;

afterEach(async () => {
  server?.closeAllConnections();
  await new Promise((r) => server?.close(r));
  server = undefined;
});

/**
 * A server that refuses POST /refuse at once (413, the body unread, `discardUnreadBody` tried:
 * what it returned is in `engaged`) and answers POST /echo with the byte count of the body it read.
 */
async function start(onRefuse: (req: IncomingMessage) => void = () => undefined): Promise<{ port: number; engaged: boolean[] }> {
  const engaged: boolean[] = [];
  server = http.createServer((req: IncomingMessage, res: ServerResponse) => {
    if (req.url === '/refuse') {
      engaged.push(discardUnreadBody(req));
      onRefuse(req);
      res.writeHead(413, { 'content-type': 'text/plain', 'content-length': '7' }).end('refused');
      return;
    }
    let n = 0;
    req.on('data', (c: Buffer) => (n += c.length));
    req.on('end', () => res.end(`read ${n}`));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { port: (server.address() as AddressInfo).port, engaged };
}

const post = (path: string, body: Buffer): Buffer => Buffer.concat([Buffer.from(`POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Length: ${body.length}\r\n\r\n`), body]);

/** Writes `bytes` whole, then reads until `responses` HTTP status lines and their bodies arrived. */
function exchange(port: number, bytes: Buffer, responses: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.on('error', reject);
    socket.write(bytes, (err) => {
      if (err) return reject(err);
      let text = '';
      socket.on('data', (c: Buffer) => {
        text += c.toString('latin1');
        const bodies = text.match(/\r\n\r\n(refused|read \d+)/g) ?? [];
        if (bodies.length >= responses) {
          socket.destroy();
          resolve(text);
        }
      });
    });
  });
}

const statuses = (text: string): string[] => [...text.matchAll(/HTTP\/1\.1 (\d{3})[^]*?\r\n\r\n(refused|read \d+)/g)].map((m) => `${m[1]} ${m[2]}`);

describe('discardUnreadBody', () => {
  it('takes over an unread body on this Node, and the next request on the connection is read whole (pipelined right behind it)', async () => {
    const { port, engaged } = await start();
    const text = await exchange(port, Buffer.concat([post('/refuse', Buffer.alloc(8 * MiB, 1)), post('/echo', Buffer.alloc(100_000, 2)), post('/refuse', Buffer.alloc(3 * MiB, 3)), post('/echo', Buffer.from('hello'))]), 4);
    expect(statuses(text)).toEqual(['413 refused', '200 read 100000', '413 refused', '200 read 5']);
    expect(engaged).toEqual([true, true]);
  });

  it('gives the parser its callbacks back when the connection closes in the middle of the body (Node hands parsers on to later connections)', async () => {
    let refused!: () => void;
    const refusedSeen = new Promise<void>((r) => (refused = r));
    const { port, engaged } = await start(() => refused());
    const socket = net.connect(port, '127.0.0.1');
    socket.write(Buffer.from(`POST /refuse HTTP/1.1\r\nHost: x\r\nContent-Length: ${8 * MiB}\r\n\r\n`));
    socket.write(Buffer.alloc(MiB));
    await refusedSeen;
    socket.destroy();
    // Later connections (one of them gets the freed parser) read their bodies whole.
    for (let i = 0; i < 3; i++) expect(statuses(await exchange(port, post('/echo', Buffer.alloc(70_000 + i, 4)), 1))).toEqual([`200 read ${70_000 + i}`]);
    expect(engaged[0]).toBe(true);
  });

  it('leaves a body that has been read from alone', async () => {
    server = http.createServer((req, res) => {
      req.once('readable', () => {
        req.read(1);
        res.end(String(discardUnreadBody(req)));
      });
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const { port } = server.address() as AddressInfo;
    const text = await new Promise<string>((resolve, reject) => {
      const req = http.request({ port, host: '127.0.0.1', method: 'POST', headers: { 'content-length': String(MiB) } }, (res) => {
        let t = '';
        res.on('data', (c: Buffer) => (t += c.toString()));
        res.on('end', () => resolve(t));
      });
      req.on('error', reject);
      req.write(Buffer.alloc(64 * 1024));
    });
    expect(text).toBe('false');
  });
});
