/**
 * The cryptographic primitives of WireGuard's Noise construction (whitepaper §5.4), on @noble:
 * HASH = BLAKE2s-256, MAC = keyed BLAKE2s-128, HMAC = HMAC-BLAKE2s, KDF_n = HKDF over HMAC,
 * AEAD = ChaCha20-Poly1305 with a 64-bit little-endian counter nonce, XAEAD = XChaCha20-Poly1305,
 * DH = X25519.
 */
import { blake2s } from '@noble/hashes/blake2.js';
import { hmac } from '@noble/hashes/hmac.js';
import { chacha20poly1305, xchacha20poly1305 } from '@noble/ciphers/chacha.js';
import { x25519 } from '@noble/curves/ed25519.js';
import { TulleError } from '../util/errors.js';

export function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

export function hash(...parts: Uint8Array[]): Uint8Array {
  const h = blake2s.create();
  for (const p of parts) h.update(p);
  return h.digest();
}

export function mac(key: Uint8Array, data: Uint8Array): Uint8Array {
  return blake2s(data, { key, dkLen: 16 });
}

export function hmacHash(key: Uint8Array, data: Uint8Array): Uint8Array {
  return hmac(blake2s, key, data);
}

/** KDF_n(key, input): returns n 32-byte outputs (n = 1..3). */
export function kdf(key: Uint8Array, input: Uint8Array, n: 1 | 2 | 3): Uint8Array[] {
  const t0 = hmacHash(key, input);
  const out: Uint8Array[] = [];
  let prev: Uint8Array = new Uint8Array(0);
  for (let i = 1; i <= n; i++) {
    prev = hmacHash(t0, concat(prev, Uint8Array.of(i)));
    out.push(prev);
  }
  t0.fill(0);
  return out;
}

/** 12-byte nonce: 4 zero bytes then the counter, little-endian. */
export function counterNonce(counter: bigint): Uint8Array {
  const n = new Uint8Array(12);
  new DataView(n.buffer).setBigUint64(4, counter, true);
  return n;
}

export function aeadSeal(key: Uint8Array, counter: bigint, plaintext: Uint8Array, ad: Uint8Array): Uint8Array {
  return chacha20poly1305(key, counterNonce(counter), ad).encrypt(plaintext);
}

/** Returns undefined when authentication fails (never throws on bad input). */
export function aeadOpen(key: Uint8Array, counter: bigint, ciphertext: Uint8Array, ad: Uint8Array): Uint8Array | undefined {
  if (ciphertext.length < 16) return undefined;
  try {
    return chacha20poly1305(key, counterNonce(counter), ad).decrypt(ciphertext);
  } catch {
    return undefined;
  }
}

export function xaeadSeal(key: Uint8Array, nonce: Uint8Array, plaintext: Uint8Array, ad: Uint8Array): Uint8Array {
  return xchacha20poly1305(key, nonce, ad).encrypt(plaintext);
}

export function xaeadOpen(key: Uint8Array, nonce: Uint8Array, ciphertext: Uint8Array, ad: Uint8Array): Uint8Array | undefined {
  try {
    return xchacha20poly1305(key, nonce, ad).decrypt(ciphertext);
  } catch {
    return undefined;
  }
}

/** X25519; throws on an all-zero result (a low-order public key), as WireGuard rejects it. */
export function dh(privateKey: Uint8Array, publicKey: Uint8Array): Uint8Array {
  let shared: Uint8Array;
  try {
    shared = x25519.getSharedSecret(privateKey, publicKey);
  } catch (cause) {
    throw new TulleError('ERR_TULLE_WG_DH', 'X25519 with a low-order or invalid public key', { cause });
  }
  if (shared.every((b) => b === 0)) throw new TulleError('ERR_TULLE_WG_DH', 'X25519 produced the zero point');
  return shared;
}

export interface KeyPair {
  privateKey: Uint8Array;
  publicKey: Uint8Array;
}

export function generateKeyPair(): KeyPair {
  const privateKey = x25519.utils.randomSecretKey();
  return { privateKey, publicKey: x25519.getPublicKey(privateKey) };
}

export function publicKeyOf(privateKey: Uint8Array): Uint8Array {
  return x25519.getPublicKey(privateKey);
}

/** Constant-time comparison of equal-length byte strings. */
export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let d = 0;
  for (let i = 0; i < a.length; i++) d |= a[i]! ^ b[i]!;
  return d === 0;
}
