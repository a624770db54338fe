// One grpc-js channel per upstream target, shared by the Segmenter, OIP and Health clients.
// Load balancing, retries and keepalive live in the channel (service config), not in our code:
// round_robin spreads calls over every address a target resolves to (headless Service DNS or
// a static ipv4: list), and UNAVAILABLE — a pod that died or is going away — is retried on
// another address with bounded attempts and backoff.
import * as grpc from '@grpc/grpc-js';
import { loadProtos, type GRPCInferenceServiceClient, type HealthClient, type SegmenterClient } from '@segserve/proto';
import type { RetryPolicy } from '../config.js';

export interface Upstream {
  readonly target: string;
  readonly segmenter: SegmenterClient;
  readonly oip: GRPCInferenceServiceClient;
  readonly health: HealthClient;
}

export interface UpstreamPoolOptions {
  readonly maxMessageBytes: number;
  readonly retry: RetryPolicy;
  readonly keepaliveMs: number;
  /** How long a channel no longer routed to stays open for calls still using it, ms. */
  readonly retireAfterMs?: number;
}

/** The service config every upstream channel gets (exported for tests and docs). */
export function upstreamServiceConfig(retry: RetryPolicy): object {
  return {
    loadBalancingConfig: [{ round_robin: {} }],
    methodConfig: [
      {
        name: [{ service: 'segserve.v1.Segmenter' }, { service: 'inference.GRPCInferenceService' }, { service: 'grpc.health.v1.Health' }],
        retryPolicy: {
          maxAttempts: retry.maxAttempts,
          initialBackoff: `${retry.initialBackoffMs / 1000}s`,
          maxBackoff: `${retry.maxBackoffMs / 1000}s`,
          backoffMultiplier: 2,
          retryableStatusCodes: ['UNAVAILABLE'],
        },
      },
    ],
    // Retries stop when more than half of recent calls failed: a dead backend set must not turn
    // every request into maxAttempts calls.
    retryThrottling: { maxTokens: 100, tokenRatio: 0.1 },
  };
}

export class UpstreamPool {
  readonly #options: UpstreamPoolOptions;
  readonly #upstreams = new Map<string, Upstream & { readonly channel: grpc.Channel }>();
  readonly #retiring = new Map<grpc.Channel, NodeJS.Timeout>();

  constructor(options: UpstreamPoolOptions) {
    this.#options = options;
  }

  #channelOptions(): grpc.ChannelOptions {
    const { maxMessageBytes, retry, keepaliveMs } = this.#options;
    return {
      'grpc.service_config': JSON.stringify(upstreamServiceConfig(retry)),
      // A TXT record must not override our policy.
      'grpc.service_config_disable_resolution': 1,
      'grpc.max_send_message_length': maxMessageBytes,
      'grpc.max_receive_message_length': maxMessageBytes,
      // Retries need the request buffered; grpc-js's defaults (1 MiB per call, 16 MiB total)
      // would silently disable retries for ordinary photos.
      'grpc.per_rpc_retry_buffer_size': maxMessageBytes,
      'grpc.retry_buffer_size': 8 * maxMessageBytes,
      'grpc.keepalive_time_ms': keepaliveMs,
      'grpc.keepalive_timeout_ms': 10_000,
      'grpc.keepalive_permit_without_calls': 1,
      'grpc.initial_reconnect_backoff_ms': 200,
      'grpc.max_reconnect_backoff_ms': 5_000,
      // Loopback and cluster traffic never goes through an HTTP proxy from the environment.
      'grpc.enable_http_proxy': 0,
      'grpc.primary_user_agent': 'segserve-gateway',
    };
  }

  /** The clients for `target`, created on first use. */
  get(target: string): Upstream {
    const existing = this.#upstreams.get(target);
    if (existing) return existing;
    const protos = loadProtos();
    const credentials = grpc.credentials.createInsecure();
    const channel = new grpc.Channel(target, credentials, this.#channelOptions());
    const shared = { channelOverride: channel };
    const upstream = {
      target,
      channel,
      segmenter: new protos.segmenter.segserve.v1.Segmenter(target, credentials, shared),
      oip: new protos.predictV2.inference.GRPCInferenceService(target, credentials, shared),
      health: new protos.health.grpc.health.v1.Health(target, credentials, shared),
    };
    this.#upstreams.set(target, upstream);
    return upstream;
  }

  targets(): string[] {
    return [...this.#upstreams.keys()];
  }

  /**
   * Retires channels for targets no longer routed to. The router makes no new calls on them;
   * calls already made (maybe still waiting for a connection or a retry) get `retireAfterMs`
   * before the channel closes.
   */
  retain(targets: ReadonlySet<string>): string[] {
    const retired: string[] = [];
    for (const [target, u] of this.#upstreams) {
      if (targets.has(target)) continue;
      this.#upstreams.delete(target);
      retired.push(target);
      const timer = setTimeout(() => {
        this.#retiring.delete(u.channel);
        u.channel.close();
      }, this.#options.retireAfterMs ?? 30_000);
      timer.unref();
      this.#retiring.set(u.channel, timer);
    }
    return retired;
  }

  close(): void {
    for (const u of this.#upstreams.values()) u.channel.close();
    this.#upstreams.clear();
    for (const [channel, timer] of this.#retiring) {
      clearTimeout(timer);
      channel.close();
    }
    this.#retiring.clear();
  }
}
