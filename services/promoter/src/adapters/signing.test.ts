import { fromPublic } from '@nats-io/nkeys';
import { describe, expect, it } from 'vitest';
import { canonicalJson } from '@segserve/proto';
import type { ExperimentResult } from '@segserve/proto';
import { generateSigningKeys, parseSigners, signResult, signingKeyFromSeed, verifyResultSignature } from './signing.js';

const result: ExperimentResult = {
  id: 'm-1-0123456789ab',
  model: 'm',
  version: '1',
  artifact: { sha256: 'a'.repeat(64), size: 10 },
  metrics: { miou: 0.8 },
  golden: { sha256: 'b'.repeat(64) },
  source: { commit: 'c', pipeline: 'p', job: 'j' },
  created_at: '2026-11-27T10:00:00Z',
};

describe('signing', () => {
  const keys = generateSigningKeys();
  const other = generateSigningKeys();
  const key = signingKeyFromSeed(`${keys.seed}\n`);
  const trusted = new Set([keys.publicKey]);
  const headers = signResult(result, key);

  it('generates a user nkey pair whose seed signs for its public key', () => {
    expect(keys.seed).toMatch(/^SU[A-Z2-7]{56}$/);
    expect(keys.publicKey).toMatch(/^U[A-Z2-7]{55}$/);
    expect(headers.signer).toBe(keys.publicKey);
    expect(Buffer.from(headers.signature, 'base64url')).toHaveLength(64);
  });

  it('verifies a signed result, whatever the key order on the wire', () => {
    const { metrics, ...rest } = result;
    const reordered = JSON.parse(JSON.stringify({ metrics, ...rest })) as ExperimentResult;
    expect(verifyResultSignature(reordered, headers, trusted)).toEqual({ ok: true, value: keys.publicKey });
  });

  it.each([
    ['no headers', {}, 'signature_missing'],
    ['no signer', { signature: headers.signature }, 'signature_missing'],
    ['an unknown signer', signResult(result, signingKeyFromSeed(other.seed)), 'signer_unknown'],
    ['a signature by another key under our signer', { signature: signResult(result, signingKeyFromSeed(other.seed)).signature, signer: keys.publicKey }, 'signature_invalid'],
    ['garbage', { signature: 'not-base64!', signer: keys.publicKey }, 'signature_invalid'],
  ])('rejects %s', (_name, h, code) => {
    const checked = verifyResultSignature(result, h, trusted);
    expect(checked.ok ? 'ok' : checked.rejection.code).toBe(code);
  });

  it('rejects a result altered after signing', () => {
    const altered = { ...result, metrics: { miou: 0.99 } };
    const checked = verifyResultSignature(altered, headers, trusted);
    expect(checked.ok ? 'ok' : checked.rejection.code).toBe('signature_invalid');
  });

  // nkeys signs and verifies in JavaScript (tens of ms each on a busy machine): a few keys suffice.
  it('the native ed25519 check agrees with nkeys on several keys and results', () => {
    for (let i = 0; i < 4; i++) {
      const k = generateSigningKeys();
      const r = { ...result, metrics: { miou: i / 4 } };
      const good = signResult(r, signingKeyFromSeed(k.seed));
      const bad = { ...good, signature: signResult({ ...r, id: `x${i}` }, signingKeyFromSeed(k.seed)).signature };
      for (const h of [good, bad]) {
        const nkeys = fromPublic(k.publicKey).verify(new TextEncoder().encode(canonicalJson(r)), Buffer.from(h.signature, 'base64url'));
        expect(verifyResultSignature(r, h, new Set([k.publicKey])).ok).toBe(nkeys);
      }
      expect(verifyResultSignature(r, good, new Set([k.publicKey])).ok).toBe(true);
    }
  });

  it('parses signer lists and refuses bad keys and seeds', () => {
    expect(parseSigners(` ${keys.publicKey},${other.publicKey}\n`)).toEqual([keys.publicKey, other.publicKey]);
    expect(parseSigners('')).toEqual([]);
    expect(() => parseSigners('UNOTAKEY')).toThrow(/'UNOTAKEY' is not a public nkey/);
    expect(() => signingKeyFromSeed(keys.publicKey)).toThrow(/not an nkeys seed/);
    expect(() => signingKeyFromSeed(`SU${'A'.repeat(56)}`)).toThrow(/not a valid nkeys seed/);
  });
});
