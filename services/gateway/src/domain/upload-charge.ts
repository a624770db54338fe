// What the gateway charges its memory budget for one request (issue 11: "the gateway never holds
// more upload bytes than its own budget"), decided from what is known at the door. The ledger
// (@segserve/runtime MemoryLedger, decideCharge) then admits, makes wait, or refuses.
//
// The gateway holds an upload from its first byte until the upstream has answered. A REST upload
// is collected with room for the upstream request's headers in front of it and sent from that
// memory: one copy. A gRPC call may be encoded again (a decoded Segment request; an OIP message
// with the routed version appended) and then framed by grpc-js: up to three.

/** Copies of an upload the gateway holds at once, by the way it came in. */
export const UPLOAD_COPIES = { rest: 1, grpc: 3 } as const;

/** Copies of an upstream answer the gateway holds while it passes it on (received, framed). */
export const ANSWER_COPIES = 2;

/** Multipart framing and the form fields the gateway tolerates beside the image (upload.ts limits). */
export const FORM_OVERHEAD_BYTES = 64 * 1024;

/** Bytes charged for an upload of `bytes` that came in by `kind`. */
export function uploadChargeBytes(kind: keyof typeof UPLOAD_COPIES, bytes: number): number {
  return UPLOAD_COPIES[kind] * bytes;
}

export type RestDoor =
  /** Content-Length over what the form may carry: refused before any byte is read. */
  | { readonly kind: 'too-large'; readonly declared: number }
  /** Charge this many bytes before reading the body. */
  | { readonly kind: 'charge'; readonly bytes: number }
  /** No usable Content-Length (chunked): charge as the bytes arrive. */
  | { readonly kind: 'unknown' };

/** The door of a REST upload, from its Content-Length header and the image limit. */
export function restDoor(contentLength: string | undefined, maxImageBytes: number): RestDoor {
  if (contentLength === undefined || !/^\d+$/.test(contentLength.trim())) return { kind: 'unknown' };
  const declared = Number(contentLength);
  if (declared > maxImageBytes + FORM_OVERHEAD_BYTES) return { kind: 'too-large', declared };
  return { kind: 'charge', bytes: uploadChargeBytes('rest', Math.min(declared, maxImageBytes)) };
}
