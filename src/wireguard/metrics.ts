/**
 * Prometheus view of the handshake device's counters, read at scrape time (nothing counted
 * twice). The data plane's own encrypted-mode counters (inbound_drop_decrypt, ...) come through
 * src/metrics/dataplane-metrics.ts with everything else native.
 *
 *   tulle_wireguard_handshake_drops_total{reason}   drop_* counters (bad_mac1, rate_limited, ...)
 *   tulle_wireguard_handshake_events_total{event}   everything else (initiations_sent, ...)
 *   tulle_wireguard_handshake_busy_seconds_total    time spent handling data plane events
 */
import client from 'prom-client';
import { HANDSHAKE_COUNTERS, type HandshakeCounter } from './device-types.js';

export function registerHandshakeMetrics(registry: client.Registry, source: () => { counters: Record<HandshakeCounter, number> } | undefined): void {
  const drops = HANDSHAKE_COUNTERS.filter((c) => c.startsWith('drop_'));
  const events = HANDSHAKE_COUNTERS.filter((c) => !c.startsWith('drop_') && c !== 'events_busy_ms');
  const family = (name: string, help: string, label: string, keys: readonly HandshakeCounter[], strip: string) =>
    new client.Counter({
      name,
      help,
      labelNames: [label],
      registers: [registry],
      collect() {
        const src = source();
        if (!src) return;
        this.reset();
        for (const k of keys) if (src.counters[k] > 0) this.inc({ [label]: k.replace(strip, '') }, src.counters[k]);
      },
    });
  family('tulle_wireguard_handshake_drops_total', 'Handshake messages dropped, by reason', 'reason', drops, 'drop_');
  family('tulle_wireguard_handshake_events_total', 'Handshake events (messages sent and received, sessions, keepalives)', 'event', events, '');
  new client.Counter({
    name: 'tulle_wireguard_handshake_busy_seconds_total',
    help: 'Time spent handling handshake messages and data plane events',
    registers: [registry],
    collect() {
      const src = source();
      if (!src) return;
      this.reset();
      if (src.counters.events_busy_ms > 0) this.inc(src.counters.events_busy_ms / 1000);
    },
  });
}
