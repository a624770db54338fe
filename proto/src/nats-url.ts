// SEGSERVE_NATS_URL may carry credentials (`nats://user:pass@host:4222`, Kubernetes builds it
// from a Secret). nats.js ignores credentials inside server URLs, so every process splits them
// out with this one function before connecting, and logs only the redacted form.

export interface NatsConnectTarget {
  readonly servers: string[];
  readonly user?: string;
  readonly pass?: string;
  readonly token?: string;
}

/**
 * `nats://user:pass@host:4222,nats://host2:4222` → servers without credentials plus the
 * credentials. A user with no password is a token.
 */
export function parseNatsUrl(url: string): NatsConnectTarget {
  let user: string | undefined;
  let pass: string | undefined;
  const servers = url.split(',').map((raw) => {
    const s = raw.trim();
    const u = new URL(/^[a-z]+:\/\//i.test(s) ? s : `nats://${s}`);
    if (u.username !== '') {
      user = decodeURIComponent(u.username);
      pass = u.password === '' ? undefined : decodeURIComponent(u.password);
    }
    return `${u.protocol}//${u.host}`;
  });
  if (user !== undefined && pass === undefined) return { servers, token: user };
  return { servers, ...(user === undefined ? {} : { user }), ...(pass === undefined ? {} : { pass }) };
}

/** The servers without credentials, for logs. */
export function redactNatsUrl(url: string): string {
  return parseNatsUrl(url).servers.join(',');
}
