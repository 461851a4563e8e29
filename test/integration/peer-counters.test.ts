/**
 * Per-peer counters in the data plane (native/src/dataplane.h), on a static three-node mesh with
 * two queues, with and without offloads: exact counts for pings to one peer and not the other;
 * over a TCP transfer (trains, GSO/GRO) every datagram sent or accepted is attributed to exactly
 * one peer (the per-peer sums equal the global counters); a reused id starts from zero; an id
 * above the cap forwards as before and is counted only globally.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBed, type Bed } from '../bed/bed.js';
import { overlaySubnet, startStaticMesh, type Mesh, type MeshNode } from '../bed/mesh.js';
import { tcpTransfer } from '../offload/transfer.js';
import { loadAddon } from '../../src/dataplane/native.js';
import type { PeerTraffic } from '../../src/dataplane/dataplane.js';

const ZERO: PeerTraffic = { txPackets: 0, txBytes: 0, rxPackets: 0, rxBytes: 0 };
const diff = (a: PeerTraffic, b: PeerTraffic): PeerTraffic => ({
  txPackets: a.txPackets - b.txPackets, txBytes: a.txBytes - b.txBytes, rxPackets: a.rxPackets - b.rxPackets, rxBytes: a.rxBytes - b.rxBytes,
});
const big = (x: unknown) => JSON.stringify(x, (_, v) => (typeof v === 'bigint' ? String(v) : v));

/** sent / accepted datagrams and bytes by the global counters (accepted = received − inbound drops before the TUN) */
function globals(m: MeshNode) {
  const c = m.dp.counters();
  const drops = ['unknown_peer', 'spoofed_source', 'malformed', 'oversized', 'ip_header_checksum'].reduce((s, r) => s + c[`inbound_drop_${r}`]!, 0n);
  return { sent: Number(c.outbound_sent_packets!), sentBytes: Number(c.outbound_sent_bytes!), accepted: Number(c.inbound_packets! - drops), c };
}
function sums(m: MeshNode, peers: readonly number[]) {
  const t = peers.map((p) => m.dp.peerTraffic(p)!);
  return { tx: t.reduce((s, x) => s + x.txPackets, 0), txBytes: t.reduce((s, x) => s + x.txBytes, 0), rx: t.reduce((s, x) => s + x.rxPackets, 0) };
}

describe.each([
  ['offloads', true],
  ['the plain loop', false],
] as const)('per-peer counters, two queues, %s', (_name, offload) => {
  let bed: Bed;
  let mesh: Mesh;
  beforeAll(async () => {
    bed = await createBed({ nodes: 3, tag: offload ? 'pco' : 'pcp' });
    mesh = await startStaticMesh(bed, { queues: 2, offload });
  });
  afterAll(async () => {
    mesh?.stop();
    await bed?.teardown();
  });

  it('counts a ping to one peer, exactly, at both ends, and nothing for the other', async () => {
    const [a, b, c] = mesh.nodes as [MeshNode, MeshNode, MeshNode];
    const a0 = { b: a.dp.peerTraffic(b.index)!, c: a.dp.peerTraffic(c.index)! };
    const b0 = b.dp.peerTraffic(a.index)!;
    const r = await bed.exec(a.node.ns, 'ping', ['-n', '-c', '3', '-i', '0.2', '-W', '2', '-s', '100', b.address]);
    expect(r.stdout).toMatch(/3 received/);
    const inner = 20 + 8 + 100; // plain mode: the UDP payload is the inner packet
    expect(diff(a.dp.peerTraffic(b.index)!, a0.b)).toEqual({ txPackets: 3, txBytes: 3 * inner, rxPackets: 3, rxBytes: 3 * inner });
    expect(diff(b.dp.peerTraffic(a.index)!, b0)).toEqual({ txPackets: 3, txBytes: 3 * inner, rxPackets: 3, rxBytes: 3 * inner });
    expect(diff(a.dp.peerTraffic(c.index)!, a0.c)).toEqual(ZERO);
  });

  it('attributes every datagram of a TCP transfer to one peer (per-peer sums = global counters)', async () => {
    const [a, b, c] = mesh.nodes as [MeshNode, MeshNode, MeshNode];
    const { sent, received } = await tcpTransfer(bed, a.node.ns, b.node.ns, b.address, 8 << 20, 7011);
    expect(received).toEqual(sent);
    for (const [m, others] of [[a, [b.index, c.index]], [b, [a.index, c.index]]] as const) {
      const g = globals(m), s = sums(m, others);
      expect({ tx: s.tx, txBytes: s.txBytes, rx: s.rx }, big(g.c)).toEqual({ tx: g.sent, txBytes: g.sentBytes, rx: g.accepted });
    }
    expect(a.dp.peerTraffic(b.index)!.txBytes).toBeGreaterThan(8 << 20);
  });

  it('starts a reused id from zero', async () => {
    const [a, b] = mesh.nodes as [MeshNode, MeshNode];
    expect(a.dp.peerTraffic(b.index)!.txPackets).toBeGreaterThan(0);
    a.dp.apply([{ op: 'deletePeer', peer: b.index }, { op: 'setPeer', peer: b.index, address: b.node.underlayIp, port: 8285 }, { op: 'setRoute', subnet: overlaySubnet(b.index), peer: b.index }]);
    expect(a.dp.peerTraffic(b.index)).toEqual(ZERO);
    // moving an existing peer (roaming) keeps its counts
    const r = await bed.exec(a.node.ns, 'ping', ['-n', '-c', '1', '-W', '2', b.address]);
    expect(r.stdout).toMatch(/1 received/);
    a.dp.apply([{ op: 'setPeer', peer: b.index, address: b.node.underlayIp, port: 8285 }]);
    expect(a.dp.peerTraffic(b.index)!.txPackets).toBe(1);
  });

  it('forwards for an id above the cap and counts it only globally', async () => {
    const [a, , c] = mesh.nodes as [MeshNode, MeshNode, MeshNode];
    const cap = loadAddon().peerCounterCap;
    expect(a.dp.peerTraffic(cap)).toBeUndefined();
    a.dp.apply([{ op: 'setPeer', peer: cap + 7, address: c.node.underlayIp, port: 8285 }, { op: 'setRoute', subnet: overlaySubnet(c.index), peer: cap + 7 }]);
    const before = globals(a).sent, beforeC = a.dp.peerTraffic(c.index)!;
    const r = await bed.exec(a.node.ns, 'ping', ['-n', '-c', '2', '-i', '0.2', '-W', '2', c.address]);
    expect(r.stdout).toMatch(/2 received/);
    expect(globals(a).sent - before).toBe(2);
    expect(a.dp.peerTraffic(c.index)!.txPackets).toBe(beforeC.txPackets); // the route no longer names id c
    expect(a.dp.peerTraffic(cap + 7)).toBeUndefined();
  });
});
