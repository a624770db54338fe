// A bounded look at a protobuf message before anything is decoded (issue 11: repeated fields are
// counted before they are materialised). The scan walks the wire format once, allocates nothing
// per field, and stops at the first field that occurs more often than its rule allows: a 2 MB
// message of 1,000,000 empty `inputs` entries is refused after the 17th, not decoded into a
// million objects. It also refuses what no decoder should be given: truncated lengths, varints
// over 10 bytes, the deprecated group wire types, and nesting the rules do not describe.

export type PackedKind = 'varint' | 'fixed32' | 'fixed64';

export interface FieldRule {
  /** The field's name, for messages. */
  readonly name: string;
  /** Most values per message: occurrences, plus the elements of packed encodings. */
  readonly max: number;
  /** Element encoding of a repeated numeric field (counts the elements of a packed run). */
  readonly packed?: PackedKind;
  /** The field is a message (or a map entry) with these rules. */
  readonly message?: MessageRule;
  /** Said after "… has more than N values" (what the client should send instead). */
  readonly why?: string;
}

export interface MessageRule {
  readonly name: string;
  /** Fields not listed are unknown to the decoder, which skips them without allocating. */
  readonly fields: Readonly<Record<number, FieldRule>>;
}

export type WireProblem = 'malformed' | 'too-many';

export class WireScanError extends Error {
  override readonly name = 'WireScanError';
  constructor(
    readonly problem: WireProblem,
    message: string,
  ) {
    super(message);
  }
}

const WIRE_VARINT = 0;
const WIRE_FIXED64 = 1;
const WIRE_LEN = 2;
const WIRE_FIXED32 = 5;

/** Reads a varint at `pos`; returns [value, next position]. Values past 2^53 are clamped (only lengths and tags are used). */
function readVarint(buf: Uint8Array, pos: number, end: number, what: string): [number, number] {
  let value = 0;
  let scale = 1;
  for (let i = 0; i < 10; i++) {
    if (pos >= end) throw new WireScanError('malformed', `${what}: truncated varint`);
    const b = buf[pos++]!;
    value += (b & 0x7f) * scale;
    scale *= 128;
    if ((b & 0x80) === 0) return [Math.min(value, Number.MAX_SAFE_INTEGER), pos];
  }
  throw new WireScanError('malformed', `${what}: varint longer than 10 bytes`);
}

/** Elements in a packed run of `len` bytes at `pos`. */
function packedElements(buf: Uint8Array, pos: number, len: number, kind: PackedKind, what: string): number {
  if (kind === 'fixed32') {
    if (len % 4 !== 0) throw new WireScanError('malformed', `${what}: packed fixed32 run of ${len} bytes`);
    return len / 4;
  }
  if (kind === 'fixed64') {
    if (len % 8 !== 0) throw new WireScanError('malformed', `${what}: packed fixed64 run of ${len} bytes`);
    return len / 8;
  }
  let n = 0;
  for (let i = pos; i < pos + len; i++) if ((buf[i]! & 0x80) === 0) n++;
  if (len > 0 && (buf[pos + len - 1]! & 0x80) !== 0) throw new WireScanError('malformed', `${what}: packed varints end mid-value`);
  return n;
}

const tooMany = (what: string, rule: FieldRule): WireScanError =>
  new WireScanError('too-many', `${what} has more than ${rule.max} ${rule.max === 1 ? 'value' : 'values'}${rule.why ? `: ${rule.why}` : ''}`);

function scan(buf: Uint8Array, start: number, end: number, rule: MessageRule, path: string): void {
  const counts = new Map<number, number>();
  let pos = start;
  while (pos < end) {
    let key: number;
    [key, pos] = readVarint(buf, pos, end, path);
    const field = Math.floor(key / 8);
    const wire = key % 8;
    if (field === 0) throw new WireScanError('malformed', `${path}: field number 0`);
    const f = rule.fields[field];
    const what = `${path}.${f?.name ?? `#${field}`}`;
    let values = 1;
    switch (wire) {
      case WIRE_VARINT:
        [, pos] = readVarint(buf, pos, end, what);
        break;
      case WIRE_FIXED64:
        pos += 8;
        break;
      case WIRE_FIXED32:
        pos += 4;
        break;
      case WIRE_LEN: {
        let len: number;
        [len, pos] = readVarint(buf, pos, end, what);
        if (len > end - pos) throw new WireScanError('malformed', `${what}: length ${len} runs past the end of the message`);
        if (f?.message) scan(buf, pos, pos + len, f.message, what);
        else if (f?.packed) values = packedElements(buf, pos, len, f.packed, what);
        pos += len;
        break;
      }
      default:
        throw new WireScanError('malformed', `${what}: wire type ${wire} is not used by this API`);
    }
    if (pos > end) throw new WireScanError('malformed', `${what}: truncated value`);
    if (f === undefined) continue;
    const seen = (counts.get(field) ?? 0) + values;
    if (seen > f.max) throw tooMany(what, f);
    counts.set(field, seen);
  }
}

/** Throws WireScanError when `buf` is not a well-formed message within `rule`'s counts. */
export function scanMessage(buf: Uint8Array, rule: MessageRule): void {
  scan(buf, 0, buf.length, rule, rule.name);
}

/**
 * The last value of a top-level length-delimited field (a string or bytes), as a view, or
 * undefined when absent. For well-formed messages (scan them first).
 */
export function lastLengthDelimited(buf: Uint8Array, field: number): Uint8Array | undefined {
  let pos = 0;
  let found: Uint8Array | undefined;
  while (pos < buf.length) {
    let key: number;
    [key, pos] = readVarint(buf, pos, buf.length, 'message');
    const wire = key % 8;
    if (wire === WIRE_VARINT) [, pos] = readVarint(buf, pos, buf.length, 'message');
    else if (wire === WIRE_FIXED64) pos += 8;
    else if (wire === WIRE_FIXED32) pos += 4;
    else if (wire === WIRE_LEN) {
      let len: number;
      [len, pos] = readVarint(buf, pos, buf.length, 'message');
      if (Math.floor(key / 8) === field) found = buf.subarray(pos, pos + len);
      pos += len;
    } else throw new WireScanError('malformed', `wire type ${wire} is not used by this API`);
  }
  return found;
}

/** The last value of a top-level string field ('' when absent, as proto3 reads it). */
export function lastString(buf: Uint8Array, field: number): string {
  const v = lastLengthDelimited(buf, field);
  return v === undefined ? '' : Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('utf8');
}

function pushVarint(out: number[], value: number): void {
  for (let v = value; ; ) {
    out.push(v >= 0x80 ? (v & 0x7f) | 0x80 : v);
    if (v < 0x80) break;
    v = Math.floor(v / 128);
  }
}

/** The tag and length of a length-delimited field of `length` bytes (its value follows them). */
export function encodeLengthDelimitedHead(field: number, length: number): Buffer {
  const out: number[] = [];
  pushVarint(out, field * 8 + WIRE_LEN);
  pushVarint(out, length);
  return Buffer.from(out);
}

/** A varint field (an enum, a bool, an unsigned integer), encoded. */
export function encodeVarintField(field: number, value: number): Buffer {
  const out: number[] = [];
  pushVarint(out, field * 8 + WIRE_VARINT);
  pushVarint(out, value);
  return Buffer.from(out);
}

/** A top-level string field, encoded: appended to a message, it overrides earlier values. */
export function encodeStringField(field: number, value: string): Buffer {
  const bytes = Buffer.from(value, 'utf8');
  return Buffer.concat([encodeLengthDelimitedHead(field, bytes.length), bytes]);
}
