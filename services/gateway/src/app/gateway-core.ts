// The one core both edges call (convert at the edge: docs/architecture.md#conventions). REST and gRPC turn their wire
// formats into these calls; routing, deadlines, error parsing and metrics happen here once.
import { loadProtos, SegserveError, toSegserveError, type RolloutState, type SegmentRequest, type SegmentResponse__Output, type Track } from '@segserve/proto';
import { encodeLengthDelimitedHead, encodeStringField, encodeVarintField, lastString } from '@segserve/runtime';
import type { GatewayMetrics, Protocol } from '../adapters/metrics.js';
import type { Logger } from '@segserve/runtime';
import { encodePalettePng } from '../domain/palette-png.js';
import { routeWeights, trackState } from '../domain/routing.js';
import type { Router } from './router.js';
import { unaryCall, type CallContext } from './upstream-call.js';

const MODEL_INFER_PATH = '/inference.GRPCInferenceService/ModelInfer';
/** Field numbers shared by ModelInferRequest and ModelInferResponse (grpc_predict_v2.proto). */
const MODEL_INFER_FIELDS = { modelName: 1, modelVersion: 2 } as const;
const asBytes = (b: Buffer): Buffer => b;

const SEGMENT_PATH = '/segserve.v1.Segmenter/Segment';
const decodeSegmentResponse = (b: Buffer): SegmentResponse__Output => loadProtos().segmenter.segserve.v1.Segmenter.service.Segment.responseDeserialize(b) as SegmentResponse__Output;

/** A SegmentRequest up to its image's bytes: model (1), version (2), mask_format (4), then image's tag and length (3). */
export function segmentRequestHeader(model: string, version: string, maskFormat: 'PNG' | 'RAW', imageBytes: number): Buffer {
  return Buffer.concat([
    encodeStringField(1, model),
    ...(version === '' ? [] : [encodeStringField(2, version)]),
    ...(maskFormat === 'RAW' ? [encodeVarintField(4, 1)] : []),
    encodeLengthDelimitedHead(3, imageBytes),
  ]);
}

/** A 1×1 PNG: the cheapest image that still makes an upstream name its classes. */
const PROBE_IMAGE = encodePalettePng(Uint8Array.of(0), 1, 1, 1);

export interface SegmentInput {
  readonly model: string;
  /** '' = whatever the route chooses. */
  readonly version: string;
  readonly image: Buffer;
  readonly maskFormat: 'PNG' | 'RAW';
  /**
   * When given: `header` followed by the image in the image's own memory, so the upstream
   * request is sent without an encoded copy of the upload (REST uploads).
   */
  readonly prefixed?: (header: Buffer) => Buffer;
}

export interface Served<T> {
  readonly response: T;
  readonly model: string;
  readonly track: Track;
  /** The version that served the request, as the upstream reported it. */
  readonly version: string;
  readonly upstreamMs: number;
}

/** OIP ModelMetadataResponse (the proto package exports only the types its users share). */
export interface TensorMetadata {
  name: string;
  datatype: string;
  /** int64 dims as decimal strings (proto-loader longs: String). */
  shape: string[];
}

export interface ModelMetadata {
  name: string;
  versions: string[];
  platform: string;
  inputs: TensorMetadata[];
  outputs: TensorMetadata[];
}

export interface TrackInfo {
  readonly version: string;
  /** Percentage of requests. */
  readonly weight: number;
}

export interface ModelSummary {
  readonly name: string;
  readonly phase: string;
  readonly stable: TrackInfo | null;
  readonly canary: TrackInfo | null;
}

export interface ModelDescription extends ModelSummary {
  readonly versions: string[];
  readonly platform: string;
  readonly inputs: TensorMetadata[];
  readonly outputs: TensorMetadata[];
  readonly input_size: { readonly height: number; readonly width: number } | null;
  readonly classes: string[];
}

export interface GatewayCoreOptions {
  readonly router: Router;
  readonly metrics: GatewayMetrics;
  readonly logger: Logger;
  /** Monotonic clock in ms (performance.now), injected for tests. */
  readonly clock?: () => number;
}

export class GatewayCore {
  readonly #router: Router;
  readonly #metrics: GatewayMetrics;
  readonly #logger: Logger;
  readonly #clock: () => number;
  /** Class names per model@version, learnt from Segment responses (OIP metadata has none). */
  readonly #classes = new Map<string, string[]>();

  constructor(options: GatewayCoreOptions) {
    this.#router = options.router;
    this.#metrics = options.metrics;
    this.#logger = options.logger;
    this.#clock = options.clock ?? (() => performance.now());
  }

  get router(): Router {
    return this.#router;
  }

  #onRetries = (n: number): void => this.#metrics.countRetries(n);

  async segment(input: SegmentInput, ctx: CallContext): Promise<Served<SegmentResponse__Output>> {
    const route = this.#router.route(input.model, input.version);
    const started = this.#clock();
    const { segmenter } = route.upstream;
    const { prefixed } = input;
    const { response } = prefixed
      ? await unaryCall<SegmentResponse__Output>((md, o, cb) => segmenter.makeUnaryRequest(SEGMENT_PATH, asBytes, decodeSegmentResponse, prefixed(segmentRequestHeader(input.model, route.version, input.maskFormat, input.image.length)), md, o, cb), ctx, this.#onRetries)
      : await unaryCall<SegmentResponse__Output>((md, o, cb) => segmenter.Segment({ model: input.model, version: route.version, image: input.image, mask_format: input.maskFormat }, md, o, cb), ctx, this.#onRetries);
    const version = response.version;
    this.#router.noteServed(input.model, route.track, version);
    if (response.classes.length > 0) this.#classes.set(`${input.model}@${version}`, response.classes.map((c) => c.name));
    return { response, model: input.model, track: route.track, version, upstreamMs: this.#clock() - started };
  }

  /** The model an OIP ModelInferRequest names (its bytes, scanned at the edge). */
  inferModel(request: Buffer): string {
    return lastString(request, MODEL_INFER_FIELDS.modelName);
  }

  /**
   * OIP ModelInfer, forwarded as bytes: the gateway reads the model name and version, routes,
   * appends the routed version when it differs (protobuf keeps the last value of a field), and
   * passes the upstream's answer back as it came. Tensors are never decoded here.
   */
  async infer(request: Buffer, ctx: CallContext): Promise<Served<Buffer>> {
    const model = this.inferModel(request);
    const requested = lastString(request, MODEL_INFER_FIELDS.modelVersion);
    const route = this.#router.route(model, requested);
    const started = this.#clock();
    const { oip } = route.upstream;
    const forwarded = route.version === requested ? request : Buffer.concat([request, encodeStringField(MODEL_INFER_FIELDS.modelVersion, route.version)]);
    const { response } = await unaryCall<Buffer>((md, o, cb) => oip.makeUnaryRequest(MODEL_INFER_PATH, asBytes, asBytes, forwarded, md, o, cb), ctx, this.#onRetries);
    const version = lastString(response, MODEL_INFER_FIELDS.modelVersion);
    this.#router.noteServed(model, route.track, version);
    return { response, model, track: route.track, version, upstreamMs: this.#clock() - started };
  }

  async modelMetadata(name: string, version: string, ctx: CallContext): Promise<Served<ModelMetadata>> {
    const route = this.#router.route(name, version);
    const started = this.#clock();
    const { oip } = route.upstream;
    const { response } = await unaryCall<ModelMetadata>((md, o, cb) => oip.ModelMetadata({ name, version: route.version }, md, o, cb), ctx, this.#onRetries);
    return { response, model: name, track: route.track, version: response.versions[0] ?? route.version, upstreamMs: this.#clock() - started };
  }

  async modelReady(name: string, version: string, ctx: CallContext): Promise<boolean> {
    const route = this.#router.route(name, version);
    const { oip } = route.upstream;
    const { response } = await unaryCall<{ ready: boolean }>((md, o, cb) => oip.ModelReady({ name, version: route.version }, md, o, cb), ctx, this.#onRetries);
    return response.ready;
  }

  /** A model's tracks as GET /v1/models lists them: versions (state or served) and weights. */
  summarize(state: RolloutState, versions: { stable?: string; canary?: string } = {}): ModelSummary {
    const weights = routeWeights(state);
    const track = (name: Track): TrackInfo | null =>
      trackState(state, name) ? { version: versions[name] || this.#router.trackVersion(state.model, name), weight: weights[name] } : null;
    return { name: state.model, phase: state.phase, stable: track('stable'), canary: track('canary') };
  }

  /** Everything GET /v1/models/{model} shows: rollout tracks plus each track's OIP metadata. */
  async describe(model: string, ctx: CallContext): Promise<ModelDescription> {
    const state = this.#router.state(model);
    if (!state) throw new SegserveError('MODEL_NOT_FOUND', `model '${model}' is not served here`);
    const tracks: Track[] = ['stable', 'canary'];
    const metadata = await Promise.all(
      tracks.map(async (track) => {
        const upstream = this.#router.trackUpstream(model, track);
        if (!upstream) return undefined;
        try {
          return (await unaryCall<ModelMetadata>((md, o, cb) => upstream.oip.ModelMetadata({ name: model, version: '' }, md, o, cb), ctx, this.#onRetries)).response;
        } catch (err) {
          this.#logger.debug('model metadata unavailable', { model, track, error: err });
          return undefined;
        }
      }),
    );
    const [stableMeta, canaryMeta] = metadata;
    const first = stableMeta ?? canaryMeta;
    if (!first) throw new SegserveError('UNAVAILABLE', `no upstream of model '${model}' answered`);
    const versionOf = (track: Track, meta: ModelMetadata | undefined): string => this.#router.trackVersion(model, track) || (meta?.versions[0] ?? '');
    const stableVersion = versionOf('stable', stableMeta);
    const canaryVersion = versionOf('canary', canaryMeta);
    const versions = [...new Set([...(stableMeta?.versions ?? []), ...(canaryMeta?.versions ?? []), stableVersion, canaryVersion].filter((v) => v !== ''))];
    const shape = first.inputs[0]?.shape.map(Number) ?? [];
    return {
      ...this.summarize(state, { stable: stableVersion, canary: canaryVersion }),
      versions,
      platform: first.platform,
      inputs: first.inputs,
      outputs: first.outputs,
      // NCHW: the image is resized to H×W before inference.
      input_size: shape.length === 4 && shape[2]! > 0 && shape[3]! > 0 ? { height: shape[2]!, width: shape[3]! } : null,
      classes: await this.#classNames(model, stableMeta ? 'stable' : 'canary', stableMeta ? stableVersion : canaryVersion, ctx),
    };
  }

  /**
   * Class names of a model version. OIP metadata has no place for them, so they come from Segment
   * responses; when none has been seen yet, one probe with a 1×1 image asks the track (once per
   * version and gateway).
   */
  async #classNames(model: string, track: Track, version: string, ctx: CallContext): Promise<string[]> {
    const known = this.#classes.get(`${model}@${version}`);
    if (known) return known;
    const upstream = this.#router.trackUpstream(model, track);
    if (!upstream) return [];
    try {
      const probe: SegmentRequest = { model, version, image: PROBE_IMAGE, mask_format: 'RAW' };
      const { response } = await unaryCall<SegmentResponse__Output>((md, o, cb) => upstream.segmenter.Segment(probe, md, o, cb), ctx, this.#onRetries);
      const names = response.classes.map((c) => c.name);
      this.#classes.set(`${model}@${response.version}`, names);
      return names;
    } catch (err) {
      this.#logger.debug('class names unavailable', { model, track, error: err });
      return [];
    }
  }

  /**
   * Records one finished request. A model the gateway does not route is labelled '' so that
   * made-up names in URLs cannot grow the metric's label set without bound.
   */
  observe(protocol: Protocol, model: string, version: string, error: unknown, startedMs: number): void {
    const code = error === undefined ? 'OK' : toSegserveError(error).code;
    this.#metrics.observeRequest({ protocol, model: this.#router.knows(model) ? model : '', version, code, seconds: (this.#clock() - startedMs) / 1000 });
  }

  /** Logs an error that reached an edge: INTERNAL in full (it is a bug), others briefly. */
  report(protocol: Protocol, err: SegserveError, fields: Record<string, unknown> = {}): void {
    if (err.code === 'INTERNAL') this.#logger.error('request failed', { protocol, ...fields, error: err.cause ?? err });
    else this.#logger.debug('request rejected', { protocol, ...fields, code: err.code, message: err.message });
  }

  now(): number {
    return this.#clock();
  }
}
