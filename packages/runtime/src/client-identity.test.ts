import { describe, expect, it } from 'vitest';
import { clientOfApiKey, clientOfForwarded, clientOfPeer, forwardedClient } from './client-identity.js';

describe('client identity', () => {
  it('names a key by a digest prefix, never the key', () => {
    const c = clientOfApiKey('a-key-of-at-least-16-characters');
    expect(c).toMatch(/^key:[0-9a-f]{16}$/);
    expect(c).not.toContain('a-key');
    expect(clientOfApiKey('a-key-of-at-least-16-characters')).toBe(c);
    expect(clientOfApiKey('another-key-of-16-characters')).not.toBe(c);
  });

  it.each([
    ['REST address', '10.0.0.7', false, 'peer:10.0.0.7'],
    ['gRPC IPv4 peer', '127.0.0.1:50312', true, 'peer:127.0.0.1'],
    ['gRPC IPv6 peer', '::1:50312', true, 'peer:::1'],
    ['gRPC IPv6 peer, full address', '2001:db8::7:443', true, 'peer:2001:db8::7'],
  ] as const)('%s', (_name, peer, withPort, expected) => {
    expect(clientOfPeer(peer, withPort)).toBe(expected);
  });

  it.each([
    ['a gateway-forwarded key client', 'key:0123456789abcdef', 'key:0123456789abcdef'],
    ['absent', undefined, undefined],
    ['empty', '', undefined],
    ['binary metadata', Buffer.from('x'), undefined],
    ['with spaces', 'key: x', undefined],
    ['too long', 'x'.repeat(97), undefined],
  ] as const)('forwarded: %s', (_name, value, expected) => {
    expect(forwardedClient(value)).toBe(expected);
  });

  it('a forwarded call is its named client; a direct one is its peer', () => {
    expect(clientOfForwarded('key:0123456789abcdef', '127.0.0.1:5000')).toBe('key:0123456789abcdef');
    expect(clientOfForwarded(undefined, '127.0.0.1:5000')).toBe('peer:127.0.0.1');
  });
});
