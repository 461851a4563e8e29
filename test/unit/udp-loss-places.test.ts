import { describe, expect, it } from 'vitest';
import { lossByPlace, socketDrops, type NodeSnapshot, type Snapshot } from '../../bench/loss-places.js';
import type { NodeDevice } from '../../bench/systems.js';

// /proc/net/udp and udp6 as the kernel prints them (a header, then one line per socket; drops last)
const PROC_NET_UDP = `   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
13623: 0B0012C6:205D 00000000:0000 07 00000000:0002C4C0 00:00000000 00000000     0        0 4117314 2 000000000fa56dad 17
13624: 0B0012C6:205D 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 4117315 2 000000000fa56dae 5
13700: 00000000:1451 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 4117400 2 000000000fa56daf 900
  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
 1043: 00000000000000000000000000000000:205D 00000000000000000000000000000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 4117500 2 000000000fa56db0 3
`;

describe('socketDrops', () => {
  it('sums the drops of every socket on the port, IPv4 and IPv6, and no other', () => {
    expect(socketDrops(PROC_NET_UDP, 8285)).toBe(17 + 5 + 3);
    expect(socketDrops(PROC_NET_UDP, 5201)).toBe(900);
    expect(socketDrops(PROC_NET_UDP, 4789)).toBe(0);
  });
});

const link = (txDropped = 0, rxDropped = 0) => ({ rxPackets: 0, rxDropped, txPackets: 0, txDropped });

function node(o: { tunTx?: number; tunRx?: number; qdisc?: number; rcvbuf?: number; sndbuf?: number; sock?: number; counters?: Record<string, bigint> }): NodeSnapshot {
  return {
    links: new Map([['tulle0', link(o.tunTx, o.tunRx)], ['eth0', link()]]),
    udp: { RcvbufErrors: o.rcvbuf ?? 0, SndbufErrors: o.sndbuf ?? 0 },
    qdiscDrops: new Map([['tulle0', o.qdisc ?? 0]]),
    systemSocketDrops: o.sock ?? 0,
    counters: o.counters ?? {},
  };
}

const snap = (nodes: NodeSnapshot[], softnetDropped = 0): Snapshot => ({ nodes, underlay: new Map([['br0', link()]]), softnetDropped });
const devices: NodeDevice[] = [0, 1].map((i) => ({ ns: `n${i}`, dev: 'tulle0', port: 8285, counters: () => ({}) }));

describe('lossByPlace', () => {
  it('puts each delta at its place, takes the system socket out of the namespace RcvbufErrors, and leaves the rest unaccounted', () => {
    const before = snap([
      node({ tunTx: 10, qdisc: 1, counters: { outbound_packets: 100n, outbound_drop_no_route: 1n, outbound_batches: 10n } }),
      node({ rcvbuf: 50, sock: 20, counters: { inbound_packets: 0n, inbound_drop_tun_write_error: 0n, inbound_drop_spoofed_source: 0n } }),
    ], 1000);
    const after = snap([
      node({ tunTx: 40, qdisc: 3, counters: { outbound_packets: 1100n, outbound_drop_no_route: 2n, outbound_batches: 60n } }),
      node({ rcvbuf: 650, sock: 120, tunRx: 4, counters: { inbound_packets: 970n, inbound_drop_tun_write_error: 6n, inbound_drop_spoofed_source: 7n } }),
    ], 5000);
    const { places, stages, drops } = lossByPlace(before, after, devices, { sent: 1030, lost: 800 });
    expect(places.senderDevice).toBe(30);
    expect(places.senderQdisc).toBe(2);
    expect(places.outbound).toBe(1);
    expect(places.receiverSocket).toBe(100);
    expect(places.appSocket).toBe(600 - 100); // RcvbufErrors counts every socket of node 1
    expect(places.tunWrite).toBe(6);
    expect(places.inbound).toBe(7); // TUN write errors are their own place
    expect(places.receiverDevice).toBe(4);
    expect(places.softnet).toBe(4000); // machine-wide: shown, not added in
    expect(places.unaccounted).toBe(800 - (30 + 2 + 1 + 100 + 500 + 6 + 7 + 4));
    expect(stages).toMatchObject({ sent: 1030, received: 230, read: 1000, arrived: 970, outBatch: 20 });
    expect(drops).toEqual({ 'node 0 outbound_drop_no_route': 1, 'node 1 inbound_drop_tun_write_error': 6, 'node 1 inbound_drop_spoofed_source': 7 });
  });

  it('has no tulle places or path for a system without counters (kernel VXLAN)', () => {
    const vx: NodeDevice[] = [0, 1].map((i) => ({ ns: `n${i}`, dev: 'tulle0', port: 4789 }));
    const s = snap([node({}), node({})]);
    const t = snap([node({}), node({ rcvbuf: 9 })]);
    const { places, stages } = lossByPlace(s, t, vx, { sent: 100, lost: 9 });
    expect(places.appSocket).toBe(9);
    expect(places.unaccounted).toBe(0);
    expect(stages.read).toBeUndefined();
  });
});
