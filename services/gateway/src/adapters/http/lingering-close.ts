// The connection of a request answered before its body arrived (refused at the door: too large,
// no room in the budget, no key, no such model) closes after the answer instead of reading the
// rest of the body (docs/architecture.md#rest). Node's default is to read and discard a refused
// body so the connection can serve the next request: for a 26 MB upload that is 26 MB the gateway
// reads, and CPU its ordinary requests wait for. Instead: `Connection: close`, the answer, FIN,
// then a lingering close — the connection stays open for a bounded grace and a bounded number of
// further bytes, so that a client still sending reads its answer before the reset that closing a
// socket with unread bytes causes (RFC 9112 §9.6), and is destroyed at the first bound reached.
import type { ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

export interface LingerLimits {
  /** How long the connection stays open after the answer, ms. */
  readonly graceMs: number;
  /** How many more bytes of the refused body are read (and discarded) meanwhile. */
  readonly maxBytes: number;
}

export const REFUSED_BODY_LINGER: LingerLimits = { graceMs: 2_000, maxBytes: 256 * 1024 };

/**
 * Called before the answer is sent: the answer says `Connection: close`, and the socket closes
 * lingering (`limits`) once the answer is written — Node ends a `Connection: close` response's
 * socket with `destroySoon()`, which is replaced for this socket.
 */
export function closeAfterAnswer(response: ServerResponse, socket: Socket, limits: LingerLimits = REFUSED_BODY_LINGER): void {
  response.setHeader('connection', 'close');
  socket.destroySoon = () => linger(socket, limits);
}

function linger(socket: Socket, { graceMs, maxBytes }: LingerLimits): void {
  const start = socket.bytesRead;
  const stop = (): void => {
    clearTimeout(timer);
    socket.destroy();
  };
  const timer = setTimeout(stop, graceMs);
  socket.on('data', () => {
    if (socket.bytesRead - start > maxBytes) stop();
  });
  // The client stopped sending (it read the answer and closed): nothing left to wait for.
  socket.once('end', stop);
  socket.once('close', () => clearTimeout(timer));
  socket.end();
}
