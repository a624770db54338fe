// What the gateway charges its memory budget for one request (issue 11: "the gateway never holds
// more upload bytes than its own budget"), decided from what is known at the door. The ledger
// (@segserve/runtime MemoryLedger, decideCharge) then admits, makes wait, or refuses.
//
// The gateway holds an upload from its first byte until the upstream has answered, in three
// copies at the peak: the bytes it received (a REST form's image, a gRPC message), the upstream
// request built from them (a protobuf encoding, or the received OIP message with the routed
// version appended), and the framed copy grpc-js writes to the HTTP/2 stream.

/** Copies of an upload the gateway holds at once. */
export const UPLOAD_COPIES = 3;

/** Copies of an upstream answer the gateway holds while it passes it on (received, framed). */
export const ANSWER_COPIES = 2;

/** Multipart framing and the form fields the gateway tolerates beside the image (upload.ts limits). */
export const FORM_OVERHEAD_BYTES = 64 * 1024;

/** Bytes charged for an upload of `bytes`. */
export function uploadChargeBytes(bytes: number): number {
  return UPLOAD_COPIES * bytes;
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
  return { kind: 'charge', bytes: uploadChargeBytes(Math.min(declared, maxImageBytes)) };
}
