// `Expect: 100-continue` (curl sends it with every body over 1 MiB): the client holds its body
// back until the server answers `100 Continue`. Node answers it at once, before any route has run,
// so a refused upload was sent whole all the same. Here the segment routes answer it only once the
// upload has passed the door (key, model, memory budget; docs/architecture.md#rest): a client
// refused there gets its refusal instead and never sends its body. Every other request gets its
// `100 Continue` at once, as before.
//
// A refusal sent instead of `100 Continue` keeps the connection open and reads whatever body still
// comes (a client may send its body without waiting): Node would close the connection, and a client
// that writes its whole body before it reads would lose the answer to the reset.
import type { IncomingMessage, Server, ServerResponse } from 'node:http';

const awaiting = new WeakSet<ServerResponse>();

/** Leaves `100 Continue` to `continueBody` (Node answers it itself while nobody listens for it). */
export function deferContinue(server: Server): void {
  server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => {
    awaiting.add(res);
    server.emit('request', req, res);
  });
}

/** Tells a client waiting for `100 Continue` to send its body; nothing for any other, or twice. */
export function continueBody(res: ServerResponse): void {
  if (awaiting.delete(res) && !res.headersSent) res.writeContinue();
}

/**
 * Called before a final answer: to a client still waiting for `100 Continue`, the answer keeps the
 * connection and the body that may still come is read (Node's `ServerResponse` marks such an answer
 * to close its connection; the mark is undone here).
 */
export function answerWithoutContinue(res: ServerResponse): void {
  if (!awaiting.delete(res)) return;
  (res as unknown as { _expect_continue: boolean })._expect_continue = false;
}
