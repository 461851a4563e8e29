/**
 * Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s as WireGuard specifies it (whitepaper §5.4.2–5.4.5):
 * the two handshake messages and the derivation of the transport keys. Pure: keys, bytes and
 * time in, messages and key pairs out; no I/O, no clock. mac1/mac2 are added and checked by
 * cookie.ts. Every consume* returns undefined on any failure instead of throwing.
 *
 *   initiator                                  responder
 *   createInitiation ── type 1 (148 B) ──────▶ consumeInitiation → peer static, timestamp
 *   consumeResponse  ◀──── type 2 (92 B) ───── createResponse → key pair (responder side)
 *   → key pair (initiator side)
 */
import { CONSTRUCTION, IDENTIFIER, INITIATION_BYTES, LABEL_COOKIE, LABEL_MAC1, MESSAGE_INITIATION, MESSAGE_RESPONSE, RESPONSE_BYTES } from './protocol-constants.js';
import { INIT, RESP, header, readU32, writeU32 } from './messages.js';
import { aeadOpen, aeadSeal, dh, generateKeyPair, hash, kdf, publicKeyOf, type KeyPair } from './primitives.js';
import { tai64n } from './tai64n.js';

const enc = new TextEncoder();
export const INITIAL_CHAIN_KEY = hash(enc.encode(CONSTRUCTION));
export const INITIAL_HASH = hash(INITIAL_CHAIN_KEY, enc.encode(IDENTIFIER));
const ZERO_PSK = new Uint8Array(32);
const EMPTY = new Uint8Array(0);

/** A static identity with the keys derived from its public key (mac1 and cookie keys). */
export interface Identity {
  privateKey: Uint8Array;
  publicKey: Uint8Array;
  /** HASH(LABEL_MAC1 || public key): the key peers use for mac1 of messages *to* us */
  mac1Key: Uint8Array;
  /** HASH(LABEL_COOKIE || public key): the key of cookie replies *from* us */
  cookieKey: Uint8Array;
}

export function identity(privateKey: Uint8Array): Identity {
  const publicKey = publicKeyOf(privateKey);
  return { privateKey, publicKey, ...peerKeys(publicKey) };
}

export function peerKeys(publicKey: Uint8Array): { mac1Key: Uint8Array; cookieKey: Uint8Array } {
  return { mac1Key: hash(enc.encode(LABEL_MAC1), publicKey), cookieKey: hash(enc.encode(LABEL_COOKIE), publicKey) };
}

/** Transport keys of one completed handshake. */
export interface SessionKeys {
  sendKey: Uint8Array;
  receiveKey: Uint8Array;
  /** our index: the receiver index peers put in messages to us */
  localIndex: number;
  remoteIndex: number;
  initiator: boolean;
}

/** What the initiator keeps between sending the initiation and receiving the response. */
export interface InitiatorState {
  localIndex: number;
  peerPublicKey: Uint8Array;
  ephemeral: KeyPair;
  chainKey: Uint8Array;
  hash: Uint8Array;
}

export function createInitiation(
  self: Identity,
  peerPublicKey: Uint8Array,
  localIndex: number,
  nowMs: number,
  ephemeral: KeyPair = generateKeyPair(),
): { message: Uint8Array; state: InitiatorState } {
  const m = header(MESSAGE_INITIATION, INITIATION_BYTES);
  writeU32(m, INIT.sender, localIndex);
  let h = hash(INITIAL_HASH, peerPublicKey);
  let c = kdf(INITIAL_CHAIN_KEY, ephemeral.publicKey, 1)[0]!;
  m.set(ephemeral.publicKey, INIT.ephemeral);
  h = hash(h, ephemeral.publicKey);
  let k: Uint8Array;
  [c, k] = kdf(c, dh(ephemeral.privateKey, peerPublicKey), 2) as [Uint8Array, Uint8Array];
  const encStatic = aeadSeal(k, 0n, self.publicKey, h);
  m.set(encStatic, INIT.static);
  h = hash(h, encStatic);
  [c, k] = kdf(c, dh(self.privateKey, peerPublicKey), 2) as [Uint8Array, Uint8Array];
  const encTime = aeadSeal(k, 0n, tai64n(nowMs), h);
  m.set(encTime, INIT.timestamp);
  h = hash(h, encTime);
  return { message: m, state: { localIndex, peerPublicKey, ephemeral, chainKey: c, hash: h } };
}

/** What the responder learned from a valid initiation. */
export interface ConsumedInitiation {
  peerPublicKey: Uint8Array;
  timestamp: Uint8Array;
  remoteIndex: number;
  remoteEphemeral: Uint8Array;
  chainKey: Uint8Array;
  hash: Uint8Array;
}

export function consumeInitiation(self: Identity, m: Uint8Array): ConsumedInitiation | undefined {
  if (m.length !== INITIATION_BYTES || m[0] !== MESSAGE_INITIATION) return undefined;
  try {
    const e = m.subarray(INIT.ephemeral, INIT.ephemeral + 32);
    let h = hash(INITIAL_HASH, self.publicKey);
    let c = kdf(INITIAL_CHAIN_KEY, e, 1)[0]!;
    h = hash(h, e);
    let k: Uint8Array;
    [c, k] = kdf(c, dh(self.privateKey, e), 2) as [Uint8Array, Uint8Array];
    const encStatic = m.subarray(INIT.static, INIT.static + 48);
    const peerPublicKey = aeadOpen(k, 0n, encStatic, h);
    if (!peerPublicKey) return undefined;
    h = hash(h, encStatic);
    [c, k] = kdf(c, dh(self.privateKey, peerPublicKey), 2) as [Uint8Array, Uint8Array];
    const encTime = m.subarray(INIT.timestamp, INIT.timestamp + 28);
    const timestamp = aeadOpen(k, 0n, encTime, h);
    if (!timestamp) return undefined;
    h = hash(h, encTime);
    return { peerPublicKey, timestamp, remoteIndex: readU32(m, INIT.sender), remoteEphemeral: Uint8Array.from(e), chainKey: c, hash: h };
  } catch {
    return undefined; // a low-order point in the message
  }
}

export function createResponse(
  init: ConsumedInitiation,
  psk: Uint8Array | undefined,
  localIndex: number,
  ephemeral: KeyPair = generateKeyPair(),
): { message: Uint8Array; keys: SessionKeys } {
  const m = header(MESSAGE_RESPONSE, RESPONSE_BYTES);
  writeU32(m, RESP.sender, localIndex);
  writeU32(m, RESP.receiver, init.remoteIndex);
  m.set(ephemeral.publicKey, RESP.ephemeral);
  let h = hash(init.hash, ephemeral.publicKey);
  let c = kdf(init.chainKey, ephemeral.publicKey, 1)[0]!;
  c = kdf(c, dh(ephemeral.privateKey, init.remoteEphemeral), 1)[0]!;
  c = kdf(c, dh(ephemeral.privateKey, init.peerPublicKey), 1)[0]!;
  const [c2, t, k] = kdf(c, psk ?? ZERO_PSK, 3) as [Uint8Array, Uint8Array, Uint8Array];
  h = hash(h, t);
  const empty = aeadSeal(k, 0n, EMPTY, h);
  m.set(empty, RESP.empty);
  const [t1, t2] = kdf(c2, EMPTY, 2) as [Uint8Array, Uint8Array];
  ephemeral.privateKey.fill(0);
  return { message: m, keys: { sendKey: t2, receiveKey: t1, localIndex, remoteIndex: init.remoteIndex, initiator: false } };
}

export function consumeResponse(
  self: Identity,
  state: InitiatorState,
  psk: Uint8Array | undefined,
  m: Uint8Array,
): SessionKeys | undefined {
  if (m.length !== RESPONSE_BYTES || m[0] !== MESSAGE_RESPONSE) return undefined;
  if (readU32(m, RESP.receiver) !== state.localIndex) return undefined;
  try {
    const e = m.subarray(RESP.ephemeral, RESP.ephemeral + 32);
    let h = hash(state.hash, e);
    let c = kdf(state.chainKey, e, 1)[0]!;
    c = kdf(c, dh(state.ephemeral.privateKey, e), 1)[0]!;
    c = kdf(c, dh(self.privateKey, e), 1)[0]!;
    const [c2, t, k] = kdf(c, psk ?? ZERO_PSK, 3) as [Uint8Array, Uint8Array, Uint8Array];
    h = hash(h, t);
    if (!aeadOpen(k, 0n, m.subarray(RESP.empty, RESP.empty + 16), h)) return undefined;
    const [t1, t2] = kdf(c2, EMPTY, 2) as [Uint8Array, Uint8Array];
    return { sendKey: t1, receiveKey: t2, localIndex: state.localIndex, remoteIndex: readU32(m, RESP.sender), initiator: true };
  } catch {
    return undefined;
  }
}
