// grpc.health.v1.Health (Check and Watch) for "" and each served service. Kubernetes' native
// gRPC probes and grpc-js clients read it; NOT_SERVING during warm-up and from the first moment
// of shutdown (docs/reliability.md item 19).

import { status as GrpcStatus, type ServerWritableStream } from '@grpc/grpc-js';
import type { HealthHandlers } from '@segserve/proto';

export type ServingStatus = 'SERVING' | 'NOT_SERVING';

export class HealthBoard {
  readonly #status = new Map<string, ServingStatus>();
  readonly #watchers = new Map<string, Set<ServerWritableStream<unknown, { status: string }>>>();

  constructor(services: readonly string[], initial: ServingStatus = 'NOT_SERVING') {
    for (const s of services) this.#status.set(s, initial);
  }

  get(service: string): ServingStatus | undefined {
    return this.#status.get(service);
  }

  setAll(status: ServingStatus): void {
    for (const service of this.#status.keys()) {
      if (this.#status.get(service) === status) continue;
      this.#status.set(service, status);
      for (const w of this.#watchers.get(service) ?? []) w.write({ status });
    }
  }

  /** Ends every Watch stream (they would otherwise hold the server open at shutdown). */
  endWatches(): void {
    for (const set of this.#watchers.values()) {
      for (const w of set) w.end();
      set.clear();
    }
  }

  handlers(): HealthHandlers {
    return {
      Check: (call, callback) => {
        const status = this.#status.get(call.request.service);
        if (status === undefined) callback({ code: GrpcStatus.NOT_FOUND, details: `unknown service '${call.request.service}'` });
        else callback(null, { status });
      },
      Watch: (call) => {
        const service = call.request.service;
        const stream = call as unknown as ServerWritableStream<unknown, { status: string }>;
        stream.write({ status: this.#status.get(service) ?? 'SERVICE_UNKNOWN' });
        let set = this.#watchers.get(service);
        if (!set) this.#watchers.set(service, (set = new Set()));
        set.add(stream);
        call.once('cancelled', () => set.delete(stream));
      },
    };
  }
}
