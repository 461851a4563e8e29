/**
 * Token bucket per source address for handshake messages under load (as wireguard-go's
 * ratelimiter: 20 per second, burst 5). Pure, time injected; entries idle for a second are
 * swept so a spoofed-source flood cannot grow the table without bound.
 */
import { HANDSHAKES_PER_SECOND, HANDSHAKE_BURST } from './tuning.js';

const MAX_ENTRIES = 65_536;

interface Bucket {
  tokens: number;
  atMs: number;
}

export class RateLimiter {
  private buckets = new Map<string, Bucket>();
  private lastSweepMs = 0;

  constructor(
    private readonly perSecond = HANDSHAKES_PER_SECOND,
    private readonly burst = HANDSHAKE_BURST,
  ) {}

  allow(source: string, nowMs: number): boolean {
    if (nowMs - this.lastSweepMs >= 1000) this.sweep(nowMs);
    let b = this.buckets.get(source);
    if (!b) {
      if (this.buckets.size >= MAX_ENTRIES) return false;
      b = { tokens: this.burst, atMs: nowMs };
      this.buckets.set(source, b);
    }
    b.tokens = Math.min(this.burst, b.tokens + ((nowMs - b.atMs) * this.perSecond) / 1000);
    b.atMs = nowMs;
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }

  private sweep(nowMs: number): void {
    this.lastSweepMs = nowMs;
    for (const [k, b] of this.buckets) if (nowMs - b.atMs >= 1000) this.buckets.delete(k);
  }
}
