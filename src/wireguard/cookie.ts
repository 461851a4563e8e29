/**
 * mac1, mac2 and cookies (whitepaper §5.4.4, §5.4.7). Pure, with time injected.
 *
 *  sender side (MacSigner, one per remote peer): mac1 = MAC(HASH("mac1----" || peer pub), msg
 *  up to mac1); mac2 = MAC(cookie, msg up to mac2) while a cookie younger than 120 s is held,
 *  else zeros. A cookie reply from the peer is opened with HASH("cookie--" || peer pub) and the
 *  mac1 we last sent as additional data.
 *
 *  receiver side (CookieChecker, one per local identity): mac1 must always be valid; under load
 *  mac2 must equal MAC(cookie(source), msg up to mac2), where cookie(source) = MAC(secret,
 *  source address bytes) and the secret rotates every 2 minutes; otherwise we answer with a
 *  cookie reply that carries the cookie encrypted with XChaCha20-Poly1305.
 */
import { randomBytes } from 'node:crypto';
import { COOKIE_REPLY_BYTES, MAC_BYTES, MESSAGE_COOKIE_REPLY } from './protocol-constants.js';
import { COOKIE_SECRET_MAX_AGE_MS, COOKIE_VALID_MS } from './tuning.js';
import { COOKIE, header, readU32, writeU32 } from './messages.js';
import { equalBytes, mac, xaeadOpen, xaeadSeal } from './primitives.js';
import { peerKeys, type Identity } from './noise.js';

/** Offsets of mac1 and mac2 are always the last 32 bytes of a handshake message. */
function mac1At(m: Uint8Array): number {
  return m.length - 2 * MAC_BYTES;
}
function mac2At(m: Uint8Array): number {
  return m.length - MAC_BYTES;
}

export class MacSigner {
  private readonly mac1Key: Uint8Array;
  private readonly cookieKey: Uint8Array;
  private cookie: Uint8Array | undefined;
  private cookieAtMs = 0;
  private lastMac1: Uint8Array | undefined;

  constructor(peerPublicKey: Uint8Array) {
    ({ mac1Key: this.mac1Key, cookieKey: this.cookieKey } = peerKeys(peerPublicKey));
  }

  /** Fills mac1 and mac2 of a handshake message in place. */
  sign(m: Uint8Array, nowMs: number): void {
    const a = mac1At(m);
    const m1 = mac(this.mac1Key, m.subarray(0, a));
    m.set(m1, a);
    this.lastMac1 = m1;
    const fresh = this.cookie && nowMs - this.cookieAtMs < COOKIE_VALID_MS;
    m.set(fresh ? mac(this.cookie!, m.subarray(0, mac2At(m))) : new Uint8Array(MAC_BYTES), mac2At(m));
  }

  /** Takes a cookie reply answering our last message; false if it does not authenticate. */
  consumeReply(reply: Uint8Array, nowMs: number): boolean {
    if (reply.length !== COOKIE_REPLY_BYTES || reply[0] !== MESSAGE_COOKIE_REPLY || !this.lastMac1) return false;
    const nonce = reply.subarray(COOKIE.nonce, COOKIE.nonce + 24);
    const cookie = xaeadOpen(this.cookieKey, nonce, reply.subarray(COOKIE.cookie, COOKIE.cookie + 32), this.lastMac1);
    if (!cookie) return false;
    this.cookie = cookie;
    this.cookieAtMs = nowMs;
    return true;
  }
}

export type MacVerdict = 'ok' | 'bad-mac1' | 'need-cookie' | 'bad-mac2';

export class CookieChecker {
  private secret = randomBytes(32);
  private secretAtMs: number;

  constructor(private readonly self: Identity, nowMs: number) {
    this.secretAtMs = nowMs;
  }

  /** mac1 always; mac2 only when underLoad. */
  check(m: Uint8Array, source: Uint8Array, underLoad: boolean, nowMs: number): MacVerdict {
    const a = mac1At(m);
    if (!equalBytes(mac(this.self.mac1Key, m.subarray(0, a)), m.subarray(a, a + MAC_BYTES))) return 'bad-mac1';
    if (!underLoad) return 'ok';
    const b = mac2At(m);
    const got = m.subarray(b, b + MAC_BYTES);
    if (got.every((x) => x === 0)) return 'need-cookie';
    return equalBytes(mac(this.cookieFor(source, nowMs), m.subarray(0, b)), got) ? 'ok' : 'bad-mac2';
  }

  /** The cookie reply to a handshake message m (whose sender index we answer to). */
  reply(m: Uint8Array, source: Uint8Array, nowMs: number): Uint8Array {
    const r = header(MESSAGE_COOKIE_REPLY, COOKIE_REPLY_BYTES);
    writeU32(r, COOKIE.receiver, readU32(m, 4));
    const nonce = randomBytes(24);
    r.set(nonce, COOKIE.nonce);
    const a = mac1At(m);
    r.set(xaeadSeal(this.self.cookieKey, nonce, this.cookieFor(source, nowMs), m.subarray(a, a + MAC_BYTES)), COOKIE.cookie);
    return r;
  }

  private cookieFor(source: Uint8Array, nowMs: number): Uint8Array {
    if (nowMs - this.secretAtMs >= COOKIE_SECRET_MAX_AGE_MS) {
      this.secret = randomBytes(32);
      this.secretAtMs = nowMs;
    }
    return mac(this.secret, source);
  }
}

