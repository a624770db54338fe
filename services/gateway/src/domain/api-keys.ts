// Optional API keys (SEGSERVE_API_KEYS). Keys are compared as SHA-256 digests with
// timingSafeEqual: digests have a fixed length, so neither the content nor the length of a
// configured key leaks through timing, and every configured key is checked on every request.
import { createHash, timingSafeEqual } from 'node:crypto';
import { clientOfApiKey } from '@segserve/runtime';

export class ApiKeys {
  readonly #digests: readonly Buffer[];

  constructor(keys: readonly string[]) {
    this.#digests = keys.map(digest);
  }

  /** True when no keys are configured: the gateway is open. */
  get open(): boolean {
    return this.#digests.length === 0;
  }

  /** Whether `presented` (a raw key) is one of the configured keys. */
  accepts(presented: string | undefined): boolean {
    if (this.open) return true;
    if (presented === undefined || presented === '') return false;
    const candidate = digest(presented);
    let match = false;
    for (const d of this.#digests) match = timingSafeEqual(d, candidate) || match;
    return match;
  }

  /** Checks an `Authorization: Bearer <key>` header value (REST header or gRPC metadata). */
  acceptsAuthorization(header: string | undefined): boolean {
    return this.accepts(bearerToken(header));
  }

  /**
   * Whose request this is, for admission (@segserve/runtime client-identity): the key's client
   * when keys are on (the request has been authorised with it), else `peer()`'s.
   */
  clientOf(authorization: string | undefined, peer: () => string): string {
    const token = this.open ? undefined : bearerToken(authorization);
    return token === undefined ? peer() : clientOfApiKey(token);
  }

  /** Keys never reach logs, not even through an accidental JSON.stringify or inspect. */
  toJSON(): string {
    return `ApiKeys(${this.#digests.length})`;
  }
}

/** The token of `Bearer <token>` (scheme case-insensitive), or undefined. */
export function bearerToken(header: string | undefined): string | undefined {
  if (header === undefined) return undefined;
  const m = /^Bearer[ ]+(\S+)\s*$/i.exec(header);
  return m?.[1];
}

function digest(key: string): Buffer {
  return createHash('sha256').update(key, 'utf8').digest();
}
