// segserve.v1.Segmenter/Segment: wire ↔ InferenceService.

import type { Metadata } from '@grpc/grpc-js';
import type { SegmenterHandlers } from '@segserve/proto';
import type { InferenceService, UploadReservation } from '../service.js';
import { callContext } from './call-context.js';
import { toServiceError } from './errors.js';

/**
 * `uploadOf(call.metadata)` is the reservation the edge took when the call arrived
 * (InferenceService.reserveArrival): the request adopts it, so the upload is charged once.
 * `isWarmUp(call.metadata)`: the call is the process's own warm-up (grpc/warm-up.ts).
 */
export function segmenterHandlers(service: InferenceService, uploadOf: (metadata: Metadata) => UploadReservation | undefined = () => undefined, isWarmUp: (metadata: Metadata) => boolean = () => false): SegmenterHandlers {
  return {
    Segment: (call, callback) => {
      const upload = uploadOf(call.metadata);
      const ctx = { ...callContext(call, 'Segment'), ...(upload ? { upload } : {}), ...(isWarmUp(call.metadata) ? { warmUp: true } : {}) };
      const req = call.request;
      const maskFormat = req.mask_format === 'RAW' ? 'RAW' : 'PNG';
      service.segment({ model: req.model, version: req.version, image: req.image, maskFormat }, ctx).then(
        (r) => {
          ctx.done();
          const t = r.timings;
          callback(null, {
            model: r.model,
            version: r.version,
            width: r.width,
            height: r.height,
            mask: r.mask,
            mask_format: r.maskFormat,
            classes: r.classes.map((c) => ({ name: c.name, pixels: c.pixels, fraction: c.fraction })),
            timings: {
              queue_ms: t.queue ?? 0,
              decode_ms: t.decode ?? 0,
              preprocess_ms: t.preprocess ?? 0,
              infer_ms: t.infer ?? 0,
              postprocess_ms: t.postprocess ?? 0,
              encode_ms: t.encode ?? 0,
              total_ms: t.total ?? 0,
            },
          });
        },
        (err: unknown) => {
          ctx.done();
          callback(toServiceError(err));
        },
      );
    },
  };
}
