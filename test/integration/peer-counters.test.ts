/**
 * Per-peer counters in the data plane (native/src/dataplane.h), on a static three-node mesh with
 * two queues, with and without offloads: exact counts for pings to one peer and not the other;
 * over a TCP transfer (trains, GSO/GRO) every datagram sent or accepted is attributed to exactly
 * one peer (the per-peer sums equal the global counters); a reused id starts from zero; ids past
 * the first block of 4096 (up to the largest) are counted too, their memory made while the
 * threads run; drops are pinned on the peer they come from or go to, strangers' on nobody.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBed, type Bed, type BedNode } from '../bed/bed.js';
import { hex, ipv4Udp } from '../bed/craft.js';
import { overlaySubnet, startStaticMesh, type Mesh, type MeshNode } from '../bed/mesh.js';
import { tcpTransfer } from '../offload/transfer.js';
import { loadAddon } from '../../src/dataplane/native.js';
import type { PeerTraffic } from '../../src/dataplane/dataplane.js';
import { until } from './cluster.js';

const SENDER = path.resolve('test/bed/send-datagrams.mjs');
const ZERO: PeerTraffic = { txPackets: 0, txBytes: 0, rxPackets: 0, rxBytes: 0 };
const diff = (a: PeerTraffic, b: PeerTraffic): PeerTraffic => ({
  txPackets: a.txPackets - b.txPackets, txBytes: a.txBytes - b.txBytes, rxPackets: a.rxPackets - b.rxPackets, rxBytes: a.rxBytes - b.rxBytes,
});
const big = (x: unknown) => JSON.stringify(x, (_, v) => (typeof v === 'bigint' ? String(v) : v));

/**
 * The data plane adds to its counters just after the syscall (sendmmsg, the TUN write) that moved
 * the packets, so a ping can return before its last packet is counted: wait until the counts have
 * reached what is expected, then assert them exactly (so anything counted twice still fails).
 */
const settle = (what: string, reached: () => boolean) => until(what, reached, 5000, 10);

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
  let stranger: BedNode;
  let dir: string;
  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'tulle-peer-drops-'));
    bed = await createBed({ nodes: 3, tag: offload ? 'pco' : 'pcp' });
    stranger = await bed.addHost('stranger', 66);
    mesh = await startStaticMesh(bed, { queues: 2, offload });
  });
  afterAll(async () => {
    mesh?.stop();
    await bed?.teardown();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });
  /** sends datagrams from `from`'s namespace to node m's data plane */
  const send = async (from: BedNode, m: MeshNode, name: string, datagrams: Uint8Array[]) => {
    const file = path.join(dir, `${name}.hex`);
    writeFileSync(file, datagrams.map(hex).join('\n'));
    const { stdout } = await bed.exec(from.ns, process.execPath, [SENDER, file, m.node.underlayIp, '8285']);
    expect(stdout).toMatch(new RegExp(`sent ${datagrams.length}`));
  };

  it('counts a ping to one peer, exactly, at both ends, and nothing for the other', async () => {
    const [a, b, c] = mesh.nodes as [MeshNode, MeshNode, MeshNode];
    const a0 = { b: a.dp.peerTraffic(b.index)!, c: a.dp.peerTraffic(c.index)! };
    const b0 = b.dp.peerTraffic(a.index)!;
    const r = await bed.exec(a.node.ns, 'ping', ['-n', '-c', '3', '-i', '0.2', '-W', '2', '-s', '100', b.address]);
    expect(r.stdout).toMatch(/3 received/);
    const inner = 20 + 8 + 100; // plain mode: the UDP payload is the inner packet
    await settle('3 echoes counted at both ends', () => {
      const x = diff(a.dp.peerTraffic(b.index)!, a0.b), y = diff(b.dp.peerTraffic(a.index)!, b0);
      return Math.min(x.txPackets, x.rxPackets, y.txPackets, y.rxPackets) >= 3;
    });
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
    await settle('the echo request counted', () => a.dp.peerTraffic(b.index)!.txPackets >= 1);
    a.dp.apply([{ op: 'setPeer', peer: b.index, address: b.node.underlayIp, port: 8285 }]);
    expect(a.dp.peerTraffic(b.index)!.txPackets).toBe(1);
  });

  it('pins inbound drops on the peer whose address sent them, and a stranger\'s on nobody', async () => {
    const [a, b, c] = mesh.nodes as [MeshNode, MeshNode, MeshNode];
    const before = { b: a.dp.peerDrops(b.index), c: a.dp.peerDrops(c.index), g: a.dp.counters() };
    const payload = new Uint8Array(64).fill(7);
    const spoofed = Array.from({ length: 5 }, () => ipv4Udp(c.address, a.address, payload)); // c's subnet, from b
    const malformed = Array.from({ length: 3 }, () => Uint8Array.from([0x95, 1, 2, 3, 4, 5, 6, 7]));
    const fromStranger = Array.from({ length: 4 }, () => ipv4Udp(b.address, a.address, payload));
    await send(b.node, a, 'spoofed', [...spoofed, ...malformed]);
    await send(stranger, a, 'stranger', fromStranger);
    const grew = (r: string) => Number(a.dp.counters()[r]! - before.g[r]!);
    await until('the drops counted', () => grew('inbound_drop_spoofed_source') === 5 && grew('inbound_drop_malformed') === 3 && grew('inbound_drop_unknown_peer') === 4, 5000);
    const d = (now: Record<string, number>, was: Record<string, number>) =>
      Object.fromEntries(Object.entries(now).map(([k, v]) => [k, v - (was[k] ?? 0)]).filter(([, v]) => v !== 0));
    expect(d(a.dp.peerDrops(b.index), before.b)).toEqual({ inbound_drop_spoofed_source: 5, inbound_drop_malformed: 3 });
    expect(d(a.dp.peerDrops(c.index), before.c)).toEqual({}); // the claimed source's peer is not blamed
  });

  it('pins send errors on the peer they were for', async () => {
    const [a, , c] = mesh.nodes as [MeshNode, MeshNode, MeshNode];
    const id = 40; // a peer the socket cannot send to: an IPv6 endpoint (ULA) on an IPv4 socket
    a.dp.apply([{ op: 'setPeer', peer: id, address: 'fd00::40', port: 8285 }, { op: 'setRoute', subnet: overlaySubnet(c.index), peer: id }]);
    try {
      const errors = Number(a.dp.counters().outbound_drop_send_error!);
      await bed.exec(a.node.ns, 'ping', ['-n', '-c', '2', '-i', '0.2', '-W', '1', c.address]).catch(() => undefined); // no reply: exit status 1
      await settle('2 send errors counted', () => Number(a.dp.counters().outbound_drop_send_error!) - errors >= 2);
      expect(Number(a.dp.counters().outbound_drop_send_error!) - errors).toBe(2);
      expect(a.dp.peerDrops(id)).toEqual({ outbound_drop_send_error: 2 });
      expect(a.dp.peerTraffic(id)).toMatchObject({ txPackets: 0 });
    } finally {
      a.dp.apply([{ op: 'setRoute', subnet: overlaySubnet(c.index), peer: c.index }, { op: 'deletePeer', peer: id }]);
    }
  });

  it('counts peers with ids past the first 4096, up to the largest, their memory made while the threads run', async () => {
    const [a, , c] = mesh.nodes as [MeshNode, MeshNode, MeshNode];
    const { peerBlockPeers, maxPeers } = loadAddon();
    expect(peerBlockPeers).toBeLessThanOrEqual(4096); // today's main counted only ids below 4096
    for (const id of [4096 + 7, 3 * peerBlockPeers + 1, maxPeers - 1]) {
      expect(a.dp.peerTraffic(id)).toBeUndefined(); // no peer in its block yet
      a.dp.apply([{ op: 'setPeer', peer: id, address: c.node.underlayIp, port: 8285 }, { op: 'setRoute', subnet: overlaySubnet(c.index), peer: id }]);
      const before = globals(a).sent, beforeC = a.dp.peerTraffic(c.index)!;
      const r = await bed.exec(a.node.ns, 'ping', ['-n', '-c', '2', '-i', '0.2', '-W', '2', '-s', '100', c.address]);
      expect(r.stdout).toMatch(/2 received/);
      await settle(`2 echoes counted on id ${id}`, () => {
        const t = a.dp.peerTraffic(id)!;
        return globals(a).sent - before >= 2 && t.txPackets >= 2 && t.rxPackets >= 2;
      });
      expect(globals(a).sent - before).toBe(2);
      const inner = 20 + 8 + 100;
      expect(a.dp.peerTraffic(id), `id ${id}`).toEqual({ txPackets: 2, txBytes: 2 * inner, rxPackets: 2, rxBytes: 2 * inner });
      expect(a.dp.peerTraffic(c.index)!.txPackets).toBe(beforeC.txPackets); // the route no longer names id c
      a.dp.apply([{ op: 'deletePeer', peer: id }]);
    }
    a.dp.apply([{ op: 'setRoute', subnet: overlaySubnet(c.index), peer: c.index }]);
    expect(() => a.dp.apply([{ op: 'setPeer', peer: maxPeers, address: c.node.underlayIp, port: 8285 }])).toThrow(/invalid data plane command/);
    expect(a.dp.peerTraffic(maxPeers)).toBeUndefined();
  });
});
