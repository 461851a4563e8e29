import { describe, expect, it } from 'vitest';
import client from 'prom-client';
import { registerHandshakeMetrics } from '../../src/wireguard/metrics.js';
import { HANDSHAKE_COUNTERS, type HandshakeCounter } from '../../src/wireguard/device-types.js';

describe('handshake metrics', () => {
  it('publishes the device counters at scrape time, drops by reason', async () => {
    const counters = Object.fromEntries(HANDSHAKE_COUNTERS.map((k) => [k, 0])) as Record<HandshakeCounter, number>;
    const registry = new client.Registry();
    registerHandshakeMetrics(registry, () => ({ counters }));
    counters.drop_bad_mac1 = 3;
    counters.initiations_sent = 2;
    counters.events_busy_ms = 1500;
    let text = await registry.metrics();
    expect(text).toMatch(/tulle_wireguard_handshake_drops_total\{reason="bad_mac1"\} 3/);
    expect(text).toMatch(/tulle_wireguard_handshake_events_total\{event="initiations_sent"\} 2/);
    expect(text).toMatch(/tulle_wireguard_handshake_busy_seconds_total 1\.5/);
    counters.drop_bad_mac1 = 5;
    text = await registry.metrics();
    expect(text).toMatch(/reason="bad_mac1"\} 5/);
  });
});
