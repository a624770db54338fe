// grpc.health.v1 for the gateway itself: SERVING while it is ready (≥1 upstream SERVING, not
// shutting down), for the empty service name and for each service it exposes.
import * as grpc from '@grpc/grpc-js';
import type { HealthHandlers } from '@segserve/proto';
import type { Readiness } from '../../app/readiness.js';

const SERVICES = new Set(['', 'segserve.v1.Segmenter', 'inference.GRPCInferenceService']);

type Status = 'SERVING' | 'NOT_SERVING' | 'SERVICE_UNKNOWN';

async function statusOf(readiness: Readiness): Promise<Status> {
  try {
    return (await readiness.check()).ready ? 'SERVING' : 'NOT_SERVING';
  } catch {
    return 'NOT_SERVING';
  }
}

/** How often a Watch re-evaluates readiness (checks are cached, so this costs little), ms. */
const WATCH_INTERVAL_MS = 1000;

export function healthHandlers(readiness: Readiness): HealthHandlers {
  return {
    Check(call, callback) {
      if (!SERVICES.has(call.request.service)) {
        callback({ code: grpc.status.NOT_FOUND, details: `unknown service '${call.request.service}'` });
        return;
      }
      void statusOf(readiness).then((status) => callback(null, { status }));
    },
    Watch(call) {
      if (!SERVICES.has(call.request.service)) {
        call.write({ status: 'SERVICE_UNKNOWN' });
        return;
      }
      let last: Status | undefined;
      let timer: NodeJS.Timeout | undefined;
      let ended = false;
      const tick = async (): Promise<void> => {
        const status = await statusOf(readiness);
        if (ended) return;
        if (status !== last) call.write({ status });
        last = status;
        // A draining server waits for open streams: end watches so shutdown is not held up.
        if (readiness.shuttingDown) {
          call.end();
          return;
        }
        timer = setTimeout(() => void tick(), WATCH_INTERVAL_MS);
      };
      call.on('cancelled', () => {
        ended = true;
        clearTimeout(timer);
      });
      void tick();
    },
  };
}
