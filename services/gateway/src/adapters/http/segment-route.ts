// POST /v1/models/{model}/segment and POST /segmentator-api: multipart in, mask out (PNG,
// palette PNG or JSON). The wire format is converted here; the core does the rest.
import type { FastifyReply, FastifyRequest } from 'fastify';
import { isValidModelName, SegserveError, type SegmentResponse__Output } from '@segserve/proto';
import { clientOfPeer, type Charge, type MemoryLedger } from '@segserve/runtime';
import type { ApiKeys } from '../../domain/api-keys.js';
import { effectiveTimeoutMs, TIMEOUT_HEADER } from '../../domain/deadline.js';
import { sniffImage } from '../../domain/image-sniff.js';
import { classColor, hexColor, paletteMaskPng } from '../../domain/palette-png.js';
import { ANSWER_COPIES, restDoor, uploadChargeBytes } from '../../domain/upload-charge.js';
import type { GatewayCore, Served } from '../../app/gateway-core.js';
import { continueBody } from './continue.js';
import { httpError, sendError } from './errors.js';
import { readImageUpload } from './upload.js';

export interface SegmentRouteOptions {
  readonly core: GatewayCore;
  readonly deadlineMs: number;
  readonly maxUploadBytes: number;
  /** The gateway's memory budget: an upload is charged before its body is read. */
  readonly ledger: MemoryLedger;
  /** How long an upload may wait for room in the budget before it is OVERLOADED, ms. */
  readonly budgetWaitMs: number;
  /** Whose request it is (its key, else its address): charged, and told to the upstream. */
  readonly apiKeys: ApiKeys;
}

/**
 * Charges the upload at the door: from Content-Length when given, else as its bytes arrive.
 * `waits` is called when the charge has to wait for room.
 */
async function chargeAtTheDoor(options: SegmentRouteOptions, request: FastifyRequest, signal: AbortSignal, client: string, waits: () => void): Promise<{ charge: Charge; reserve: (capacity: number) => void }> {
  const header = request.headers['content-length'];
  const door = restDoor(Array.isArray(header) ? header[0] : header, options.maxUploadBytes);
  if (door.kind === 'too-large') throw new SegserveError('TOO_LARGE', `the request body has ${door.declared} bytes; the image may have at most ${options.maxUploadBytes}`);
  const charge = await options.ledger.charge(door.kind === 'charge' ? door.bytes : 0, { waitMs: options.budgetWaitMs, signal, client, onWait: waits });
  const reserve = (capacity: number): void => {
    const wanted = uploadChargeBytes('rest', capacity);
    if (wanted > charge.bytes) charge.grow(wanted - charge.bytes);
  };
  return { charge, reserve };
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
  // The client hanging up withdraws a wait for memory and cancels the upstream call, which frees
  // the pod's slot.
  const abort = new AbortController();
  const onClose = (): void => {
    if (!reply.raw.writableFinished) abort.abort(new SegserveError('UNAVAILABLE', 'the client went away'));
  };
  reply.raw.once('close', onClose);
  const held: Charge[] = [];
  try {
    // Cheap checks first: nothing is read or forwarded for a request that cannot succeed.
    if (!isValidModelName(model) || !core.router.knows(model)) throw new SegserveError('MODEL_NOT_FOUND', `model '${model}' is not served here`);
    const { color, version: requested } = parseQuery(request.query as SegmentQuery);
    const header = request.headers[TIMEOUT_HEADER];
    const timeout = effectiveTimeoutMs(options.deadlineMs, Array.isArray(header) ? header[0] : header);
    if (!timeout.ok) throw new SegserveError('INVALID_INPUT', timeout.message);

    const client = options.apiKeys.clientOf(request.headers.authorization, () => clientOfPeer(request.ip));
    // A client waiting for `100 Continue` is told to send its body once the upload is admitted — or
    // when it starts to wait for room, so that a client that stops waiting for the 100 after a
    // second (curl) does not start sending into an answer that closes the connection (continue.ts).
    const door = await chargeAtTheDoor(options, request, abort.signal, client, () => continueBody(reply.raw));
    held.push(door.charge);
    continueBody(reply.raw);
    const { image, prefixed } = await readImageUpload(request, { fileSize: options.maxUploadBytes, reserve: door.reserve });
    const sniffed = sniffImage(image);
    if (sniffed.kind === 'rejected') throw new SegserveError('UNSUPPORTED_MEDIA_TYPE', `${sniffed.format} is not supported; send a JPEG, PNG or WebP image`);

    const served = await core.segment(
      { model, version: requested, image, maskFormat: 'PNG', prefixed },
      { deadline: Date.now() + timeout.ms, signal: abort.signal, client },
    );
    version = served.version;
    const r = served.response;
    let mask = r.mask;
    if (color) {
      // The upstream's PNG and its re-labelled copy are held until sent.
      held.push(options.ledger.hold(ANSWER_COPIES * r.mask.length, client));
      mask = recolour(r.mask);
    }
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
  } finally {
    for (const c of held) c.release();
    reply.raw.off('close', onClose);
  }
}

/** The palette PNG of the upstream's class-index PNG; a mask in another form breaks the upstream contract. */
function recolour(greyPng: Uint8Array): Buffer {
  try {
    return paletteMaskPng(greyPng);
  } catch (err) {
    throw new SegserveError('INTERNAL', 'the model server answered a mask that is not an 8-bit greyscale PNG', { cause: err });
  }
}
