// SEGSERVE_UPSTREAMS: static routes for gateways that do not follow NATS (one machine, tests,
// `segserve start`). Parsed into the same RolloutState the NATS watch yields, so routing has one
// input type whichever source feeds it.
//
//   SEGSERVE_UPSTREAMS="<entry>[;<entry>…]"
//   <entry>  = <model>=<target>                  stable track
//            | <model>/canary=<weight>@<target>  canary track, weight = percentage 0–100
//   <target> = dns:///host:port | ipv4:host:port[,host:port…] | ipv6:… | unix:… | host:port
//
// e.g. "facade-ads=ipv4:127.0.0.1:50051,127.0.0.1:50052;facade-ads/canary=10@ipv4:127.0.0.1:50053;
//       other=dns:///inference-other-stable:50051"
import { isValidModelName, type CanaryTrackState, type RolloutState, type TrackState } from '@segserve/proto';

export class UpstreamsSpecError extends Error {
  override readonly name = 'UpstreamsSpecError';
}

const SCHEMED_TARGET = /^(dns:(\/\/[^/]*)?\/[^/\s]+|ipv4:[^\s]+|ipv6:[^\s]+|unix:[^\s]+)$/;
const HOST_PORT = /^[A-Za-z0-9._-]+:\d{1,5}$/;

/** A gRPC target string, or a plain host:port turned into `dns:///host:port`. */
export function normalizeTarget(target: string): string {
  const t = target.trim();
  if (SCHEMED_TARGET.test(t)) return t;
  if (HOST_PORT.test(t)) return `dns:///${t}`;
  throw new UpstreamsSpecError(`'${target}' is not a gRPC target (dns:///host:port, ipv4:host:port[,host:port…] or host:port)`);
}

interface Tracks {
  stable?: TrackState;
  canary?: CanaryTrackState;
}

/**
 * Parses the SEGSERVE_UPSTREAMS format into one RolloutState per model. Versions are unknown
 * here (empty): the upstream names the version it served in every response.
 */
export function parseUpstreamsSpec(spec: string, updatedAt: string): RolloutState[] {
  const byModel = new Map<string, Tracks>();
  const entries = spec.split(';').map((e) => e.trim()).filter((e) => e.length > 0);
  for (const entry of entries) {
    const eq = entry.indexOf('=');
    if (eq <= 0) throw new UpstreamsSpecError(`entry '${entry}' is not <model>=<target> or <model>/canary=<weight>@<target>`);
    const key = entry.slice(0, eq).trim();
    const value = entry.slice(eq + 1).trim();
    const [model = '', track = 'stable', ...rest] = key.split('/');
    if (!isValidModelName(model)) throw new UpstreamsSpecError(`'${model}' is not a valid model name`);
    if (rest.length > 0 || (track !== 'stable' && track !== 'canary')) {
      throw new UpstreamsSpecError(`'${key}': the track after '/' is 'canary' (or 'stable')`);
    }
    const tracks = byModel.get(model) ?? {};
    if (tracks[track]) throw new UpstreamsSpecError(`'${key}' is given twice`);
    if (track === 'stable') {
      tracks.stable = { version: '', sha256: '', target: normalizeTarget(value) };
    } else {
      const at = value.indexOf('@');
      const weightText = at < 0 ? '' : value.slice(0, at).trim();
      if (!/^\d+(\.\d+)?$/.test(weightText)) throw new UpstreamsSpecError(`'${key}': the value is <weight>@<target>, weight a percentage 0–100`);
      const weight = Number(weightText);
      if (weight > 100) throw new UpstreamsSpecError(`'${key}': weight ${weightText} is over 100`);
      tracks.canary = { version: '', sha256: '', target: normalizeTarget(value.slice(at + 1)), weight };
    }
    byModel.set(model, tracks);
  }
  return [...byModel].map(([model, tracks]): RolloutState => {
    if (!tracks.stable) throw new UpstreamsSpecError(`model '${model}' has a canary but no stable target`);
    return { model, stable: tracks.stable, canary: tracks.canary ?? null, phase: tracks.canary ? 'Canary' : 'Idle', updated_at: updatedAt, revision: 0 };
  });
}
