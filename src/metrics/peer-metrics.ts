/**
 * Per-peer traffic in Prometheus, read at scrape time from the data plane's per-peer counters
 * (shared memory; native/src/dataplane.h):
 *
 *   tulle_peer_packets_total{subnet, direction}   outbound = sent to the peer, inbound = accepted from it
 *   tulle_peer_bytes_total{subnet, direction}     their UDP payload bytes
 *   tulle_peer_drops_total{subnet, direction, reason}   drops pinned on the peer (dataplane.h);
 *                                                 reasons as tulle_drops_total's, which counts them too
 *
 * `subnet` is the peer's lease subnet (several, comma-separated, in the rare case one endpoint
 * holds more than one lease), so a series follows a node, not a data-plane peer id.
 */
import client from 'prom-client';
import type { PeerView } from '../control/status-snapshot.js';

export function registerPeerMetrics(registry: client.Registry, peers: () => readonly PeerView[]): void {
  const metric = (name: string, help: string, pick: (t: NonNullable<PeerView['traffic']>) => [number, number]) =>
    new client.Counter({
      name, help, labelNames: ['subnet', 'direction'], registers: [registry],
      collect() {
        this.reset();
        for (const p of peers()) {
          if (!p.traffic || !p.subnets.length) continue;
          const subnet = p.subnets.join(',');
          const [out, inb] = pick(p.traffic);
          this.inc({ subnet, direction: 'outbound' }, out);
          this.inc({ subnet, direction: 'inbound' }, inb);
        }
      },
    });
  new client.Counter({
    name: 'tulle_peer_drops_total',
    help: 'Packets dropped by the data plane that are pinned on a peer (by its lease subnet), by direction and reason; also in tulle_drops_total',
    labelNames: ['subnet', 'direction', 'reason'],
    registers: [registry],
    collect() {
      this.reset();
      for (const p of peers()) {
        if (!p.drops || !p.subnets.length) continue;
        const subnet = p.subnets.join(',');
        for (const [name, n] of Object.entries(p.drops)) {
          const m = /^(outbound|inbound)_drop_(\w+)$/.exec(name);
          if (m && n > 0) this.inc({ subnet, direction: m[1]!, reason: m[2]! }, n);
        }
      }
    },
  });
  metric('tulle_peer_packets_total', 'Datagrams sent to (outbound) and accepted from (inbound) each peer, by its lease subnet', (t) => [t.txPackets, t.rxPackets]);
  metric('tulle_peer_bytes_total', 'UDP payload bytes sent to (outbound) and accepted from (inbound) each peer, by its lease subnet', (t) => [t.txBytes, t.rxBytes]);
}
