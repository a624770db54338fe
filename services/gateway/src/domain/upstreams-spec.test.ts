import { describe, expect, it } from 'vitest';
import { normalizeTarget, parseUpstreamsSpec, UpstreamsSpecError } from './upstreams-spec.js';

const NOW = '2026-01-01T00:00:00.000Z';

describe('parseUpstreamsSpec', () => {
  it('parses stable and canary routes of several models', () => {
    const states = parseUpstreamsSpec(' facade-ads=ipv4:127.0.0.1:50051,127.0.0.1:50052 ; facade-ads/canary=10@ipv4:127.0.0.1:50053; other=dns:///inference-other-stable:50051;', NOW);
    expect(states).toEqual([
      {
        model: 'facade-ads',
        stable: { version: '', sha256: '', target: 'ipv4:127.0.0.1:50051,127.0.0.1:50052' },
        canary: { version: '', sha256: '', target: 'ipv4:127.0.0.1:50053', weight: 10 },
        phase: 'Canary',
        updated_at: NOW,
        revision: 0,
      },
      { model: 'other', stable: { version: '', sha256: '', target: 'dns:///inference-other-stable:50051' }, canary: null, phase: 'Idle', updated_at: NOW, revision: 0 },
    ]);
  });

  it('accepts host:port as a DNS target and fractional weights', () => {
    const [s] = parseUpstreamsSpec('m=inference:50051;m/canary=2.5@inference-canary:50051', NOW);
    expect(s?.stable?.target).toBe('dns:///inference:50051');
    expect(s?.canary).toMatchObject({ target: 'dns:///inference-canary:50051', weight: 2.5 });
  });

  it.each([
    ['no equals sign', 'facade-ads', /is not <model>=<target>/],
    ['bad model name', 'Facade=ipv4:127.0.0.1:1', /not a valid model name/],
    ['path traversal as a name', '../x=ipv4:127.0.0.1:1', /not a valid model name/],
    ['unknown track', 'm/blue=ipv4:127.0.0.1:1', /track after '\/'/],
    ['duplicate', 'm=ipv4:127.0.0.1:1;m=ipv4:127.0.0.1:2', /given twice/],
    ['canary without weight', 'm=ipv4:127.0.0.1:1;m/canary=ipv4:127.0.0.1:2', /<weight>@<target>/],
    ['canary weight over 100', 'm=ipv4:127.0.0.1:1;m/canary=101@ipv4:127.0.0.1:2', /over 100/],
    ['canary without stable', 'm/canary=5@ipv4:127.0.0.1:2', /no stable target/],
    ['not a target', 'm=http://x', /not a gRPC target/],
  ])('rejects %s', (_name, spec, message) => {
    expect(() => parseUpstreamsSpec(spec, NOW)).toThrow(UpstreamsSpecError);
    expect(() => parseUpstreamsSpec(spec, NOW)).toThrow(message);
  });
});

describe('normalizeTarget', () => {
  it.each([
    ['dns:///a.b.svc:50051', 'dns:///a.b.svc:50051'],
    ['ipv4:127.0.0.1:1,127.0.0.1:2', 'ipv4:127.0.0.1:1,127.0.0.1:2'],
    ['ipv6:[::1]:50051', 'ipv6:[::1]:50051'],
    ['unix:/tmp/s.sock', 'unix:/tmp/s.sock'],
    ['localhost:50051', 'dns:///localhost:50051'],
  ])('%s', (input, expected) => {
    expect(normalizeTarget(input)).toBe(expected);
  });
});
