/**
 * Per-peer traffic in Prometheus, read at scrape time from the data plane's per-peer counters
 * (shared memory; native/src/dataplane.h):
 *
 *   tulle_peer_packets_total{subnet, direction}   outbound = sent to the peer, inbound = accepted from it
 *   tulle_peer_bytes_total{subnet, direction}     their UDP payload bytes
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
  metric('tulle_peer_packets_total', 'Datagrams sent to (outbound) and accepted from (inbound) each peer, by its lease subnet', (t) => [t.txPackets, t.rxPackets]);
  metric('tulle_peer_bytes_total', 'UDP payload bytes sent to (outbound) and accepted from (inbound) each peer, by its lease subnet', (t) => [t.txBytes, t.rxBytes]);
}
