// ExperimentResult (docs/architecture.md#nats): one message per experiment on `segserve.experiments.<model>`,
// published by `segserve publish`, consumed by the promoter's intake.
//
// Signing contract (what a publisher in another language must reproduce):
// - canonical JSON = RFC 8785 (JCS) for these values: object keys sorted by UTF-16 code units,
//   no whitespace, strings and numbers as ECMAScript JSON.stringify writes them;
// - header `Segserve-Signature` = base64url (no padding) of the ed25519 signature (nkeys
//   `sign`) over the UTF-8 bytes of the canonical JSON of the whole result;
// - header `Segserve-Signer` = the signer's public nkey (`U…`), one of the promoter's
//   configured signers; header `Nats-Msg-Id` = `id` (JetStream de-duplication).
// The signature covers the parsed value, not the bytes on the wire, so re-encoding the JSON
// does not break it while changing any value does.
//
// Two forms (`schema_version`): 1 (or absent) claims absolute figures; 2 also carries `baseline`,
// the stable measured in the same run, paired with the candidate (`segserve eval --against`).
// Figures that depend on the hardware (latency, memory) are then claimed as the ratio
// metrics[m] / baseline.metrics[m], which another machine can check; accuracy stays absolute.
import { Ajv } from 'ajv';
import { SegserveError } from './errors.js';
import { describeAjvErrors, loadSchema } from './model-manifest.js';

/** The stable measured in the same run as the candidate (schema_version 2). */
export interface ExperimentBaseline {
  readonly version: string;
  /** The stable's model.onnx digest: the promoter's stable must be this one. */
  readonly sha256: string;
  readonly metrics: Readonly<Record<string, number>>;
  /** Per metric, the [low, high] confidence interval of the ratio metrics / baseline.metrics. */
  readonly intervals?: Readonly<Record<string, readonly [number, number]>>;
  /** Candidate/stable pairs the ratios come from. */
  readonly pairs?: number;
}

export interface ExperimentResult {
  readonly id: string;
  /** 1 when absent; 2 requires `baseline`. */
  readonly schema_version?: 1 | 2;
  readonly model: string;
  readonly version: string;
  readonly artifact: { readonly sha256: string; readonly size: number };
  readonly metrics: Readonly<Record<string, number>>;
  readonly baseline?: ExperimentBaseline;
  readonly golden: { readonly sha256: string };
  readonly source: { readonly commit: string; readonly pipeline: string; readonly job: string };
  readonly created_at: string;
}

export const EXPERIMENT_HEADERS = {
  msgId: 'Nats-Msg-Id',
  signature: 'Segserve-Signature',
  signer: 'Segserve-Signer',
} as const;

export const EXPERIMENT_ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$/;

/** Results are small; anything bigger is not a result (the stream enforces it too). */
export const MAX_EXPERIMENT_RESULT_BYTES = 64 * 1024;

const ajv = new Ajv({ allErrors: true, strict: true });
const validateSchema = ajv.compile<ExperimentResult>(loadSchema('experiment-result.schema.json'));

/** Paths of numbers that JSON cannot carry (NaN, ±Infinity; `1e999` parses to Infinity). */
function nonFinitePaths(value: unknown, at = ''): string[] {
  if (typeof value === 'number') return Number.isFinite(value) ? [] : [at || '(root)'];
  if (Array.isArray(value)) return value.flatMap((v, i) => nonFinitePaths(v, `${at}[${i}]`));
  if (value && typeof value === 'object') {
    return Object.entries(value).flatMap(([k, v]) => nonFinitePaths(v, at ? `${at}.${k}` : k));
  }
  return [];
}

/** Validates a parsed result: the schema, finite numbers, unknown fields rejected. */
export function parseExperimentResult(value: unknown, source = 'experiment result'): ExperimentResult {
  const bad = nonFinitePaths(value);
  if (bad.length > 0) throw new SegserveError('INVALID_INPUT', `${source}: ${bad.join(', ')} not a finite number`);
  if (!validateSchema(value)) throw new SegserveError('INVALID_INPUT', `${source}: ${describeAjvErrors(validateSchema.errors)}`);
  return value;
}

/** Decodes the UTF-8 JSON body of a message and validates it. */
export function decodeExperimentResult(body: Uint8Array, source = 'experiment result'): ExperimentResult {
  if (body.byteLength > MAX_EXPERIMENT_RESULT_BYTES) {
    throw new SegserveError('INVALID_INPUT', `${source}: ${body.byteLength} bytes, over the ${MAX_EXPERIMENT_RESULT_BYTES}-byte limit`);
  }
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(body));
  } catch (err) {
    throw new SegserveError('INVALID_INPUT', `${source}: not UTF-8 JSON (${err instanceof Error ? err.message : String(err)})`);
  }
  return parseExperimentResult(value, source);
}

/** RFC 8785 canonical JSON of a JSON value (throws on non-finite numbers and non-JSON values). */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value === 'boolean' || typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new TypeError('canonicalJson: non-finite number');
    return JSON.stringify(value);
  }
  if (Array.isArray(value)) return `[${value.map((v) => canonicalJson(v)).join(',')}]`;
  if (typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined);
    // Default sort compares UTF-16 code units, which is what RFC 8785 prescribes.
    entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  throw new TypeError(`canonicalJson: ${typeof value} is not a JSON value`);
}
