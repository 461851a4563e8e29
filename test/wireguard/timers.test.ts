import { describe, expect, it } from 'vitest';
import { DEFAULT_TIMING, PeerTimers } from '../../src/wireguard/timers.js';

const noJitter = () => 0;

describe('PeerTimers (fake clock)', () => {
  it('retries the initiation every 5 s and gives up after 90 s', () => {
    const t = new PeerTimers(DEFAULT_TIMING, noJitter);
    expect(t.wantHandshake(0)).toBe(true);
    t.initiationSent(0);
    expect(t.wantHandshake(1)).toBe(false);
    let now = 0;
    let sent = 1;
    for (;;) {
      now = t.nextDeadline()!;
      const acts = t.due(now);
      if (acts.includes('give-up')) break;
      expect(acts).toEqual(['send-initiation']);
      t.initiationSent(now);
      sent++;
    }
    expect(now).toBe(90_000);
    expect(sent).toBe(18);
  });

  it('jitter stays below 334 ms', () => {
    const t = new PeerTimers(DEFAULT_TIMING, () => 0.999);
    t.initiationSent(0);
    expect(t.nextDeadline()).toBe(5_000 + 333);
  });

  it('a derived session stops retries and arms zero-keys at 3 × 180 s', () => {
    const t = new PeerTimers(DEFAULT_TIMING, noJitter);
    t.initiationSent(0);
    t.sessionDerived(100);
    expect(t.nextDeadline()).toBe(100 + 540_000);
    expect(t.due(540_099)).toEqual([]);
    expect(t.due(540_100)).toEqual(['zero-keys']);
  });

  it('keepalive 10 s after data received unless something was sent', () => {
    const t = new PeerTimers(DEFAULT_TIMING, noJitter);
    t.dataReceived(0);
    t.dataReceived(3000); // does not push the deadline
    expect(t.due(9999)).toEqual([]);
    expect(t.due(10_000)).toEqual(['send-keepalive']);
    t.dataReceived(20_000);
    t.anyAuthenticatedSent(21_000);
    expect(t.due(40_000)).toEqual([]);
  });

  it('new handshake 15 s after data sent with nothing received', () => {
    const t = new PeerTimers(DEFAULT_TIMING, noJitter);
    t.dataSent(0);
    expect(t.due(14_999)).toEqual([]);
    expect(t.due(15_000)).toEqual(['send-initiation']);
    t.dataSent(20_000);
    t.anyAuthenticatedReceived(21_000);
    expect(t.due(60_000)).toEqual([]);
  });

  it('persistent keepalive fires on its interval without traffic', () => {
    const t = new PeerTimers({ ...DEFAULT_TIMING, persistentKeepaliveMs: 25_000 }, noJitter);
    t.anyAuthenticatedSent(0);
    expect(t.due(24_999)).toEqual([]);
    expect(t.due(25_000)).toEqual(['send-keepalive']);
    expect(t.nextDeadline()).toBe(50_000);
  });

  it('defers a handshake wanted within 5 s of the last initiation until it is allowed', () => {
    const t = new PeerTimers(DEFAULT_TIMING, noJitter);
    t.initiationSent(0);
    t.sessionDerived(100);
    expect(t.wantHandshake(2000)).toBe(false);
    expect(t.nextDeadline()).toBe(5000);
    expect(t.due(4999)).toEqual([]);
    expect(t.due(5000)).toEqual(['send-initiation']);
    t.initiationSent(5000);
    expect(t.due(5001)).toEqual([]);
  });
});
