/**
 * Admission of handshake messages (types 1 and 2) before any Noise work: load detection, the
 * per-source rate limits, mac1 and mac2, cookie replies. Pure: bytes, source and time in, a
 * verdict out (the caller sends the cookie reply).
 *
 * Order under load: cheap checks first, so a flood costs a map lookup per message rather than a
 * MAC — a message without mac2 can only earn a cookie reply (limited per source), one with mac2
 * needs a token from its source's bucket before its MACs are computed. Not under load: mac1 only.
 */
import { CookieChecker } from './cookie.js';
import { MAC_BYTES } from './protocol-constants.js';
import { RateLimiter } from './rate-limiter.js';
import { UNDER_LOAD_HOLD_MS, UNDER_LOAD_PENDING } from './tuning.js';
import type { Identity } from './noise.js';

export type GateVerdict =
  | { pass: true }
  | { pass: false; reason: 'rate-limited' | 'bad-mac1' | 'bad-mac2' }
  | { pass: false; reason: 'cookie'; reply: Uint8Array };

export class HandshakeGate {
  private readonly checker: CookieChecker;
  private readonly limiter = new RateLimiter();
  private readonly cookieLimiter = new RateLimiter();
  private underLoadUntil = -Infinity;

  constructor(self: Identity, nowMs: number) {
    this.checker = new CookieChecker(self, nowMs);
  }

  /** Called once per drain with the number of handshake messages that were waiting. True = under load now. */
  observePending(pending: number, nowMs: number): boolean {
    if (pending < UNDER_LOAD_PENDING) return false;
    this.underLoadUntil = nowMs + UNDER_LOAD_HOLD_MS;
    return true;
  }

  underLoad(nowMs: number): boolean {
    return nowMs < this.underLoadUntil;
  }

  /** `address` keys the rate limits; `source` (address bytes + port) is what a cookie binds to. */
  admit(m: Uint8Array, address: string, source: Uint8Array, nowMs: number): GateVerdict {
    const underLoad = this.underLoad(nowMs);
    if (underLoad) {
      const noMac2 = m.subarray(m.length - MAC_BYTES).every((x) => x === 0);
      if (!(noMac2 ? this.cookieLimiter : this.limiter).allow(address, nowMs)) return { pass: false, reason: 'rate-limited' };
    }
    const v = this.checker.check(m, source, underLoad, nowMs);
    switch (v) {
      case 'ok': return { pass: true };
      case 'need-cookie': return { pass: false, reason: 'cookie', reply: this.checker.reply(m, source, nowMs) };
      default: return { pass: false, reason: v };
    }
  }
}
