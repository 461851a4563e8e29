/**
 * Renewals are spread in time: 200 nodes that acquire in the same instant renew between
 * margin × (1 + RENEW_SPREAD) and margin before expiry, not all at once; none earlier, none
 * later. Fake clock, in-memory registry, seeded random.
 */
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { parseNetworkConfig } from '../../src/config/network-config.js';
import { LeaseManager, RENEW_SPREAD } from '../../src/lease/lease-manager.js';
import { MemoryRegistry } from '../../src/registry/memory-registry.js';
import { FakeClock } from './fake-clock.js';
import { seededRandom } from './seeded-random.js';

const CONFIG = '{"Network":"10.244.0.0/16","SubnetLen":26}';
const HOUR = 3600_000;
const TTL = 24 * HOUR;

describe('lease renewal spread', () => {
  it('200 nodes booted together renew over the spread window, none outside it', async () => {
    const clock = new FakeClock();
    const registry = new MemoryRegistry(clock, CONFIG);
    const random = seededRandom(3);
    const ms = Array.from({ length: 200 }, (_, i) => new LeaseManager({
      registry, clock, random, log: pino({ level: 'silent' }), config: parseNetworkConfig(CONFIG),
      attrs: { PublicIP: `198.19.0.${i}`, PublicIPv6: null, BackendType: 'udp' }, ttlMs: TTL, renewMarginMs: HOUR,
    }));
    for (const m of ms) await m.acquire();
    for (const m of ms) m.start();
    const t0 = clock.now(); // every lease was taken at t0 (the fake clock does not move by itself)
    const windowStart = t0 + TTL - HOUR * (1 + RENEW_SPREAD);
    await clock.advance(windowStart - 1000 - t0);
    expect(ms.filter((m) => m.status().lease!.renewals > 0)).toHaveLength(0);
    // walk the window a minute at a time, noting when each node renewed
    const renewedAt = new Map<LeaseManager, number>();
    while (clock.now() < t0 + TTL - HOUR + 60_000) {
      await clock.advance(60_000);
      for (const m of ms) if (!renewedAt.has(m) && m.status().lease!.renewals > 0) renewedAt.set(m, clock.now());
    }
    expect(renewedAt.size).toBe(200);
    const times = [...renewedAt.values()];
    const minutes = new Set(times.map((t) => Math.floor(t / 60_000)));
    expect(Math.min(...times)).toBeGreaterThanOrEqual(windowStart - 1000);
    expect(Math.max(...times)).toBeLessThanOrEqual(t0 + TTL - HOUR + 60_000);
    // 6 minutes of window: renewals land in most of them, never more than a third in one
    expect(minutes.size).toBeGreaterThanOrEqual(5);
    const perMinute = new Map<number, number>();
    for (const t of times) perMinute.set(Math.floor(t / 60_000), (perMinute.get(Math.floor(t / 60_000)) ?? 0) + 1);
    expect(Math.max(...perMinute.values())).toBeLessThan(200 / 3);
    for (const m of ms) await m.stop();
  }, 60_000);
});
