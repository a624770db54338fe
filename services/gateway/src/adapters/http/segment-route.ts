// POST /v1/models/{model}/segment and POST /segmentator-api: multipart in, mask out (PNG,
// palette PNG or JSON). The wire format is converted here; the core does the rest.
import type { FastifyReply, FastifyRequest } from 'fastify';
import { isValidModelName, SegserveError, type SegmentResponse__Output } from '@segserve/proto';
import { effectiveTimeoutMs, TIMEOUT_HEADER } from '../../domain/deadline.js';
import { sniffImage } from '../../domain/image-sniff.js';
import { classColor, encodePalettePng, hexColor } from '../../domain/palette-png.js';
import type { GatewayCore, Served } from '../../app/gateway-core.js';
import { httpError, sendError } from './errors.js';
import { readImageUpload } from './upload.js';

export interface SegmentRouteOptions {
  readonly core: GatewayCore;
  readonly deadlineMs: number;
  readonly maxUploadBytes: number;
}

interface SegmentQuery {
  readonly format?: string;
  readonly version?: string;
}

/** JSON when the client lists application/json before (or instead of) image/png. */
export function wantsJson(accept: string | undefined): boolean {
  if (!accept) return false;
  const types = accept.split(',').map((t) => t.split(';')[0]?.trim().toLowerCase());
  const json = types.indexOf('application/json');
  const png = types.indexOf('image/png');
  return json >= 0 && (png < 0 || json < png);
}

function parseQuery(query: SegmentQuery): { color: boolean; version: string } {
  const format = query.format ?? '';
  if (format !== '' && format !== 'color' && format !== 'png') throw new SegserveError('INVALID_INPUT', `format must be 'color' (or absent), not '${format}'`);
  const version = query.version ?? '';
  if (version.length > 64 || /[^A-Za-z0-9._-]/.test(version)) throw new SegserveError('INVALID_INPUT', 'version is not a valid version string');
  return { color: format === 'color', version };
}

function jsonBody(served: Served<SegmentResponse__Output>, mask: Buffer, color: boolean, totalMs: number): object {
  const r = served.response;
  const round = (ms: number): number => Math.round(ms * 100) / 100;
  return {
    model: served.model,
    version: served.version,
    track: served.track,
    width: r.width,
    height: r.height,
    classes: r.classes.map((c, index) => ({ index, name: c.name, pixels: Number(c.pixels), fraction: c.fraction, color: hexColor(classColor(index)) })),
    mask: mask.toString('base64'),
    mask_format: color ? 'color' : 'png',
    timings: { total_ms: round(totalMs), upstream_ms: round(served.upstreamMs), inference: r.timings ? { ...r.timings } : null },
  };
}

/** Handles one segment request for `model` (already taken from the path or the default). */
export async function handleSegment(options: SegmentRouteOptions, model: string, request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
  const { core } = options;
  const started = core.now();
  let version = '';
  try {
    // Cheap checks first: nothing is read or forwarded for a request that cannot succeed.
    if (!isValidModelName(model) || !core.router.knows(model)) throw new SegserveError('MODEL_NOT_FOUND', `model '${model}' is not served here`);
    const { color, version: requested } = parseQuery(request.query as SegmentQuery);
    const header = request.headers[TIMEOUT_HEADER];
    const timeout = effectiveTimeoutMs(options.deadlineMs, Array.isArray(header) ? header[0] : header);
    if (!timeout.ok) throw new SegserveError('INVALID_INPUT', timeout.message);

    const image = await readImageUpload(request, { fileSize: options.maxUploadBytes });
    const sniffed = sniffImage(image);
    if (sniffed.kind === 'rejected') throw new SegserveError('UNSUPPORTED_MEDIA_TYPE', `${sniffed.format} is not supported; send a JPEG, PNG or WebP image`);

    // The client hanging up cancels the upstream call, which frees the pod's slot.
    const abort = new AbortController();
    const onClose = (): void => {
      if (!reply.raw.writableFinished) abort.abort();
    };
    reply.raw.once('close', onClose);
    const served = await core.segment(
      { model, version: requested, image, maskFormat: color ? 'RAW' : 'PNG' },
      { deadline: Date.now() + timeout.ms, signal: abort.signal },
    );
    version = served.version;
    const r = served.response;
    const mask = color ? encodePalettePng(r.mask, r.width, r.height, r.classes.length) : r.mask;
    const totalMs = core.now() - started;
    void reply
      .header('segserve-model', served.model)
      .header('segserve-model-version', served.version)
      .header('server-timing', `upstream;dur=${served.upstreamMs.toFixed(1)}, total;dur=${totalMs.toFixed(1)}`);
    core.observe('rest', model, version, undefined, started);
    if (wantsJson(request.headers.accept)) return reply.type('application/json; charset=utf-8').send(jsonBody(served, mask, color, totalMs));
    return reply.type('image/png').send(mask);
  } catch (err) {
    const e = httpError(err);
    core.observe('rest', model, version, e, started);
    core.report('rest', e, { model });
    return sendError(reply, e);
  }
}
