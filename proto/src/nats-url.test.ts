import { describe, expect, it } from 'vitest';
import { parseNatsUrl, redactNatsUrl } from './nats-url.js';

describe('parseNatsUrl', () => {
  it.each<[string, object]>([
    ['nats://127.0.0.1:4222', { servers: ['nats://127.0.0.1:4222'] }],
    ['127.0.0.1:4222', { servers: ['nats://127.0.0.1:4222'] }],
    ['nats://inference:p%40ss@nats:4222', { servers: ['nats://nats:4222'], user: 'inference', pass: 'p@ss' }],
    ['nats://tok3n@nats:4222', { servers: ['nats://nats:4222'], token: 'tok3n' }],
    ['nats://u:p@a:4222, nats://b:4222', { servers: ['nats://a:4222', 'nats://b:4222'], user: 'u', pass: 'p' }],
  ])('%s', (url, expected) => {
    expect(parseNatsUrl(url)).toEqual(expected);
  });

  it('redacts credentials for logs', () => {
    expect(redactNatsUrl('nats://inference:secret@nats:4222')).toBe('nats://nats:4222');
  });
});
