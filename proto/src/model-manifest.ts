// model.json (docs/architecture.md#model-package): validated on load, unknown keys rejected.
import { Ajv, type ErrorObject } from 'ajv';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { SCHEMA_DIR } from './paths.js';
import { SegserveError } from './errors.js';

export type OutputKind = 'logits' | 'probabilities' | 'sigmoid';

export interface ModelManifest {
  readonly name: string;
  readonly version: string;
  readonly sha256: string;
  readonly description?: string;
  readonly input: {
    readonly name: string;
    readonly height: number;
    readonly width: number;
    readonly mean: readonly [number, number, number];
    readonly std: readonly [number, number, number];
    readonly scale: number;
    readonly channel_order?: 'RGB' | 'BGR';
  };
  readonly output: { readonly name: string; readonly kind: OutputKind; readonly threshold?: number };
  readonly classes: readonly string[];
  readonly metrics?: Readonly<Record<string, number>>;
  readonly training?: Readonly<Record<string, unknown>>;
}

/** Model names: safe as a path segment, a NATS subject token, a Kubernetes name part. */
export const MODEL_NAME_PATTERN = /^[a-z0-9][a-z0-9-]{0,62}$/;
/** Versions: safe as a path segment and an object-store key part. */
export const MODEL_VERSION_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

export function isValidModelName(name: string): boolean {
  return MODEL_NAME_PATTERN.test(name);
}

export function isValidModelVersion(version: string): boolean {
  return MODEL_VERSION_PATTERN.test(version) && !version.includes('..');
}

export function loadSchema(file: string): object {
  return JSON.parse(readFileSync(path.join(SCHEMA_DIR, file), 'utf8')) as object;
}

/** "input.height must be integer; classes must NOT have fewer than 2 items" */
export function describeAjvErrors(errors: ErrorObject[] | null | undefined): string {
  return (errors ?? [])
    .map((e) => {
      const where = e.instancePath.replace(/^\//, '').replaceAll('/', '.') || '(root)';
      const extra = e.keyword === 'additionalProperties' ? ` '${String(e.params['additionalProperty'])}'` : '';
      return `${where} ${e.message ?? 'is invalid'}${extra}`;
    })
    .join('; ');
}

const ajv = new Ajv({ allErrors: true, strict: true, strictTuples: false });
const validateManifestSchema = ajv.compile<ModelManifest>(loadSchema('model.schema.json'));

/**
 * Validates a parsed model.json. Beyond the schema: sigmoid and single-channel probabilities
 * need a threshold in (0, 1) range semantics, and version must not be a path trick.
 */
export function parseModelManifest(value: unknown, source = 'model.json'): ModelManifest {
  if (!validateManifestSchema(value)) {
    throw new SegserveError('INVALID_INPUT', `${source}: ${describeAjvErrors(validateManifestSchema.errors)}`);
  }
  if (!isValidModelVersion(value.version)) {
    throw new SegserveError('INVALID_INPUT', `${source}: version '${value.version}' is not a valid version`);
  }
  if (value.output.kind === 'sigmoid' && value.classes.length !== 2) {
    throw new SegserveError('INVALID_INPUT', `${source}: a sigmoid output has exactly 2 classes`);
  }
  if (value.metrics) {
    for (const [k, v] of Object.entries(value.metrics)) {
      if (!Number.isFinite(v)) throw new SegserveError('INVALID_INPUT', `${source}: metrics.${k} is not a finite number`);
    }
  }
  return Object.freeze(value);
}
