// The rest of a body the gateway answered without reading (a refusal at the door: over the limit,
// no room in the budget, no key, no such model) is still read — a client that writes its whole
// body before it reads its answer would otherwise be left blocked in its write and then lose the
// answer to the reset (docs/architecture.md#rest) — but without copying it. Node's HTTP server
// reads and discards it so that the keep-alive connection can carry the next request; on its way,
// its HTTP parser copies every chunk of the body into a fresh Buffer before the request stream
// drops it. Those copies are memory outside V8's heap, and V8 answers every few tens of MB of such
// memory with a full garbage collection: a flood of large refused uploads became collections
// paid by every other request on the event loop. The parser skips a body's bytes without copying
// when the request has no body callback, so the callback is taken away for the rest of this
// message and put back before the next message's headers are handed on.
import type { IncomingMessage } from 'node:http';

/** Node's HTTP parser, as far as used here: the message it is parsing, its callbacks in numbered slots. */
type ParserSlots = Record<number, unknown> & { incoming?: unknown };

/** The slots of Node's parser callbacks (their numbers are internal to Node, so they are found by name). */
interface Slots {
  readonly body: number;
  readonly messageComplete: number;
}

const SLOT_SCAN = 16;

function findSlots(parser: ParserSlots): Slots | undefined {
  let body = -1;
  let messageComplete = -1;
  for (let i = 0; i < SLOT_SCAN; i++) {
    const f = parser[i];
    if (typeof f !== 'function') continue;
    if (f.name === 'parserOnBody') body = i;
    else if (f.name === 'parserOnMessageComplete') messageComplete = i;
  }
  return body >= 0 && messageComplete >= 0 ? { body, messageComplete } : undefined;
}

/**
 * Lets the rest of `request`'s body be read without being copied, when nothing has read from it
 * and it has not all arrived; true when that is now so. False leaves Node's own discard (the same
 * bytes read, each chunk copied): a request already being read, an HTTP/2 request, or a Node whose
 * parser looks different.
 */
export function discardUnreadBody(request: IncomingMessage): boolean {
  if (request.complete || request.readableDidRead) return false;
  const socket = request.socket as (IncomingMessage['socket'] & { parser?: ParserSlots | null }) | null;
  const parser = socket?.parser;
  if (!socket || !parser || parser.incoming !== request) return false;
  const slots = findSlots(parser);
  if (!slots) return false;
  const onBody = parser[slots.body];
  const onMessageComplete = parser[slots.messageComplete] as (...args: unknown[]) => unknown;
  // Put back when this message ends (before a next one on the connection — keep-alive or
  // pipelined — can start), or when the connection closes first: Node hands its parsers on to
  // later connections.
  const restore = (): void => {
    if (parser[slots.messageComplete] !== endOfMessage) return;
    parser[slots.body] = onBody;
    parser[slots.messageComplete] = onMessageComplete;
    socket.off('close', restore);
  };
  function endOfMessage(this: unknown, ...args: unknown[]): unknown {
    restore();
    return onMessageComplete.apply(this, args);
  }
  parser[slots.body] = undefined;
  parser[slots.messageComplete] = endOfMessage;
  socket.on('close', restore);
  return true;
}
