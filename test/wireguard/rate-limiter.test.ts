import { describe, expect, it } from 'vitest';
import { RateLimiter } from '../../src/wireguard/rate-limiter.js';

describe('RateLimiter (20/s, burst 5, per source)', () => {
  it('allows a burst, then refills at the rate', () => {
    const r = new RateLimiter();
    const got = Array.from({ length: 8 }, () => r.allow('198.18.0.9', 1000));
    expect(got.filter(Boolean).length).toBe(5);
    expect(r.allow('198.18.0.9', 1049)).toBe(false); // 49 ms: 0.98 of a token
    expect(r.allow('198.18.0.9', 1050)).toBe(true);
    expect(r.allow('198.18.0.9', 1051)).toBe(false);
    expect(r.allow('198.18.0.10', 1050)).toBe(true); // another source is independent
  });

  it('lets about 20 per second through a sustained flood', () => {
    const r = new RateLimiter();
    let n = 0;
    for (let t = 0; t < 10_000; t++) if (r.allow('x', t)) n++; // one attempt per ms for 10 s
    expect(n).toBeGreaterThanOrEqual(200);
    expect(n).toBeLessThanOrEqual(206);
  });
});
