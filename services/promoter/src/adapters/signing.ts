// ed25519 signatures over ExperimentResults with nkeys (docs/architecture.md#nats; the contract is written
// at the top of proto/src/experiment-result.ts). Publishers hold a seed (`SU…`); the promoter
// holds only public keys (`U…`) and accepts results signed by one of them.
import { createPublicKey, verify as verifyEd25519, type KeyObject } from 'node:crypto';
import { createUser, fromPublic, fromSeed, type KeyPair } from '@nats-io/nkeys';
import { SegserveError, canonicalJson, type ExperimentResult } from '@segserve/proto';
import type { Checked } from '../domain/experiment-result.js';

const encoder = new TextEncoder();

export interface SignatureHeaders {
  readonly signature: string;
  readonly signer: string;
}

/** A new publisher key pair: the seed is the secret, the public key goes into SEGSERVE_SIGNERS. */
export function generateSigningKeys(): { readonly seed: string; readonly publicKey: string } {
  const kp = createUser();
  return { seed: new TextDecoder().decode(kp.getSeed()), publicKey: kp.getPublicKey() };
}

/** Reads a seed as found in a file or variable (surrounding whitespace ignored). */
export function signingKeyFromSeed(text: string): KeyPair {
  const seed = text.trim();
  if (!/^S[A-Z2-7]{55,}$/.test(seed)) throw new SegserveError('INVALID_INPUT', 'the signing seed is not an nkeys seed (it starts with S and is 58 characters of base32)');
  try {
    return fromSeed(encoder.encode(seed));
  } catch (err) {
    throw new SegserveError('INVALID_INPUT', 'the signing seed is not a valid nkeys seed', { cause: err });
  }
}

/** Validates a list of public keys (SEGSERVE_SIGNERS: comma or whitespace separated). */
export function parseSigners(text: string): string[] {
  const keys = text.split(/[\s,]+/).filter((k) => k.length > 0);
  for (const key of keys) {
    try {
      fromPublic(key);
    } catch {
      throw new SegserveError('INVALID_INPUT', `'${key}' is not a public nkey`);
    }
  }
  return keys;
}

export function signResult(result: ExperimentResult, key: KeyPair): SignatureHeaders {
  const signature = key.sign(encoder.encode(canonicalJson(result)));
  return { signature: Buffer.from(signature).toString('base64url'), signer: key.getPublicKey() };
}

const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

/** RFC 4648 base32 without padding (the nkeys encoding). */
function base32Decode(text: string): Uint8Array {
  const out: number[] = [];
  let bits = 0;
  let value = 0;
  for (const ch of text) {
    const v = BASE32.indexOf(ch);
    if (v < 0) throw new Error('not base32');
    value = (value << 5) | v;
    bits += 5;
    if (bits >= 8) {
      out.push((value >>> (bits - 8)) & 0xff);
      bits -= 8;
    }
  }
  return Uint8Array.from(out);
}

const verifyingKeys = new Map<string, KeyObject>();

/**
 * The ed25519 key of a public nkey as a native KeyObject: nkeys' own (pure JavaScript) verify
 * costs milliseconds per signature, which a flood of forged signatures would turn into a queue.
 * `fromPublic` checks the prefix and the checksum first.
 */
function verifyingKey(signer: string): KeyObject {
  let key = verifyingKeys.get(signer);
  if (!key) {
    fromPublic(signer);
    const raw = base32Decode(signer).subarray(1, 33);
    key = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(raw).toString('base64url') }, format: 'jwk' });
    verifyingKeys.set(signer, key);
  }
  return key;
}

/**
 * Checks the signature headers of a result against the trusted signers. Returns the signer on
 * success; the rejection says which of missing / unknown signer / bad signature it was.
 */
export function verifyResultSignature(result: ExperimentResult, headers: Partial<SignatureHeaders>, trusted: ReadonlySet<string>): Checked<string> {
  const { signature, signer } = headers;
  if (!signature || !signer) {
    return {
      ok: false,
      rejection: { stage: 'signature', code: 'signature_missing', reason: 'Rejected: the result carries no Segserve-Signature / Segserve-Signer headers.' },
    };
  }
  if (!trusted.has(signer)) {
    return {
      ok: false,
      rejection: { stage: 'signature', code: 'signer_unknown', reason: `Rejected: signer ${signer} is not one of the configured signers.`, details: { signer } },
    };
  }
  let ok = false;
  try {
    const bytes = Buffer.from(signature, 'base64url');
    ok = bytes.length === 64 && verifyEd25519(null, encoder.encode(canonicalJson(result)), verifyingKey(signer), bytes);
  } catch {
    ok = false;
  }
  if (!ok) {
    return {
      ok: false,
      rejection: { stage: 'signature', code: 'signature_invalid', reason: `Rejected: the signature does not verify with signer ${signer}'s key (altered result or wrong key).`, details: { signer } },
    };
  }
  return { ok: true, value: signer };
}
