// segserve.v1.Segmenter/Segment: wire ↔ InferenceService.

import type { Metadata } from '@grpc/grpc-js';
import type { SegmenterHandlers } from '@segserve/proto';
import type { InferenceService } from '../service.js';
import { callContext } from './call-context.js';
import { toServiceError } from './errors.js';

/**
 * `handOff(call.metadata)` gives back the edge's door charge; it is called just before the
 * service charges the same upload itself (synchronously, so the bytes are never counted twice).
 */
export function segmenterHandlers(service: InferenceService, handOff: (metadata: Metadata) => void = () => undefined): SegmenterHandlers {
  return {
    Segment: (call, callback) => {
      const ctx = callContext(call, 'Segment');
      handOff(call.metadata);
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
