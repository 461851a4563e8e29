import { describe, expect, it } from 'vitest';
import { ReplayWindow } from '../../src/wireguard/replay-window.js';

describe('ReplayWindow (RFC 6479, 8128 bits)', () => {
  it('accepts each counter once, in any order within the window', () => {
    const w = new ReplayWindow();
    for (const c of [0n, 2n, 1n, 5n, 3n]) expect(w.accept(c)).toBe(true);
    for (const c of [0n, 1n, 2n, 3n, 5n]) expect(w.accept(c)).toBe(false);
    expect(w.accept(4n)).toBe(true);
  });

  it('keeps exactly 8128 counters behind the newest', () => {
    const w = new ReplayWindow();
    expect(w.accept(10_000n)).toBe(true);
    expect(w.accept(10_000n - 8128n)).toBe(true);
    expect(w.accept(10_000n - 8129n)).toBe(false);
    expect(w.accept(10_000n + 100_000n)).toBe(true);
    expect(w.accept(10_000n)).toBe(false); // far behind now
  });

  it('rejects counters at or past REJECT_AFTER_MESSAGES', () => {
    const w = new ReplayWindow();
    expect(w.accept(2n ** 64n - 2n ** 13n - 1n)).toBe(false);
    expect(w.accept(2n ** 64n - 2n ** 13n - 2n)).toBe(true);
  });

  it('matches a brute-force set model on random sequences', () => {
    let seed = 12345;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
    const w = new ReplayWindow();
    const seen = new Set<bigint>();
    let max = -1n;
    for (let i = 0; i < 20_000; i++) {
      const c = max < 0n ? 0n : BigInt(Math.max(0, Number(max) + Math.floor((rnd() - 0.8) * 10_000)));
      const expected = !seen.has(c) && (c > max || max - c <= 8128n);
      expect(w.accept(c)).toBe(expected);
      if (expected) seen.add(c);
      if (c > max && expected) max = c;
    }
  });
});
