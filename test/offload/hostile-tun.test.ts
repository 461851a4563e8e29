// Super-packets from the TUN with virtio-net headers chosen by the test (AF_PACKET +
// PACKET_VNET_HDR on the TUN's transmit path, as the kernel's TSO would queue them). The split
// must not assume a number of segments per super-packet: a TCP super-packet with an 8-byte
// gso_size is 7500 segments, more than the outbound segment area holds (1024) — all of them go
// out. A header that lies about the packet is dropped by name.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBed, type Bed } from '../bed/bed.js';
import { startStaticMesh, type Mesh } from '../bed/mesh.js';
import { pollUntil } from '../bed/proc.js';
import { tcpSegment } from '../bed/trains.js';

const INJECT = path.resolve('test/bed/inject-tun.py');

function vnet(h: { flags: number; gsoType: number; hdrLen: number; gsoSize: number; csumStart: number; csumOffset: number }): Buffer {
  const b = Buffer.alloc(10);
  b[0] = h.flags;
  b[1] = h.gsoType;
  b.writeUInt16LE(h.hdrLen, 2);
  b.writeUInt16LE(h.gsoSize, 4);
  b.writeUInt16LE(h.csumStart, 6);
  b.writeUInt16LE(h.csumOffset, 8);
  return b;
}

function records(list: { vnet: Buffer; pkt: Uint8Array }[]): Buffer {
  return Buffer.concat(
    list.flatMap(({ vnet: v, pkt }) => {
      const n = Buffer.alloc(4);
      n.writeUInt32BE(pkt.length);
      return [v, n, Buffer.from(pkt)];
    }),
  );
}

describe('super-packets from the TUN', () => {
  let bed: Bed;
  let mesh: Mesh;
  let dir: string;
  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'tulle-tun-'));
    bed = await createBed({ nodes: 2, tag: 'ht' });
    mesh = await startStaticMesh(bed);
  });
  afterAll(async () => {
    mesh?.stop();
    await bed?.teardown();
    rmSync(dir, { recursive: true, force: true });
  });

  const inject = async (list: { vnet: Buffer; pkt: Uint8Array }[]) => {
    const a = mesh.nodes[0]!;
    const file = path.join(dir, 'inject.bin');
    writeFileSync(file, records(list));
    const { stdout } = await bed.exec(a.node.ns, 'python3', [INJECT, a.dp.tunName, file]);
    return { injected: Number(/injected (\d+)/.exec(stdout)![1]), refused: Number(/refused (\d+)/.exec(stdout)![1]) };
  };

  it('splits a super-packet of 7500 segments (gso_size 8) completely, piece by piece', async () => {
    const [a, b] = mesh.nodes as [Mesh['nodes'][0], Mesh['nodes'][0]];
    if (!a.dp.offload.tso) return expect(a.dp.offload.tso).toBe(true); // the kernel must take TSO here
    const pkt = tcpSegment(a.address, b.address, 1, 60_000);
    const before = a.dp.counters();
    const r = await inject([{ vnet: vnet({ flags: 1, gsoType: 1, hdrLen: 40, gsoSize: 8, csumStart: 20, csumOffset: 16 }), pkt }]);
    expect(r).toEqual({ injected: 1, refused: 0 });
    const want = 60_000n / 8n;
    const c = await pollUntil(() => {
      const now = a.dp.counters();
      return now.outbound_packets! - before.outbound_packets! >= want ? now : undefined;
    }, 'segments', 20_000).catch(() => a.dp.counters());
    const d = (k: string) => c[k]! - before[k]!;
    // (the TUN may carry a stray packet of the kernel's own meanwhile, e.g. IPv6 neighbour discovery)
    expect({ split: d('outbound_gso_splits'), badVnet: d('outbound_drop_bad_vnet') }).toEqual({ split: 1n, badVnet: 0n });
    expect(d('outbound_packets')).toBeGreaterThanOrEqual(want);
    expect(d('outbound_packets')).toBeLessThan(want + 5n);
    expect(d('outbound_sent_packets') + d('outbound_drop_send_error')).toBeGreaterThanOrEqual(want);
    // b got them in order as far as TCP is concerned: it answers the stray data with resets, and
    // the data plane keeps forwarding
    const ping = await bed.exec(a.node.ns, 'ping', ['-c', '3', '-i', '0.1', '-W', '2', b.address]);
    expect(ping.stdout).toMatch(/3 packets transmitted, 3 received/);
  });

  it('drops super-packets whose header lies about the packet, by name', async () => {
    const [a, b] = mesh.nodes as [Mesh['nodes'][0], Mesh['nodes'][0]];
    const pkt = tcpSegment(a.address, b.address, 1, 3000);
    const lies = [
      // the transport header at offset 0 (inside the IP header)
      vnet({ flags: 1, gsoType: 1, hdrLen: 40, gsoSize: 1000, csumStart: 0, csumOffset: 16 }),
      // the checksum field of a UDP header on a TCP super-packet
      vnet({ flags: 1, gsoType: 1, hdrLen: 40, gsoSize: 1000, csumStart: 20, csumOffset: 6 }),
      // TCPv6 on an IPv4 packet
      vnet({ flags: 1, gsoType: 4, hdrLen: 40, gsoSize: 1000, csumStart: 20, csumOffset: 16 }),
      // (the kernel refuses those three itself; the ones below it lets through)
      // the transport header 4 bytes after where the IPv4 header ends
      vnet({ flags: 1, gsoType: 1, hdrLen: 44, gsoSize: 1000, csumStart: 24, csumOffset: 16 }),
      // UDP segmentation of a TCP packet
      vnet({ flags: 1, gsoType: 5, hdrLen: 28, gsoSize: 1000, csumStart: 20, csumOffset: 6 }),
    ];
    const fragment = Uint8Array.from(pkt);
    fragment[6] = 0x20; // more fragments: a super-packet is never a fragment
    fragment[10] = fragment[11] = 0;
    const all = [...lies.map((v) => ({ vnet: v, pkt })), { vnet: vnet({ flags: 1, gsoType: 1, hdrLen: 40, gsoSize: 1000, csumStart: 20, csumOffset: 16 }), pkt: fragment }];
    const before = a.dp.counters();
    const r = await inject(all);
    expect(r.injected + r.refused).toBe(all.length);
    // the kernel refuses some itself and drops others on the way to the TUN; what reaches tulle
    // is dropped as a bad virtio-net header, and nothing of it goes out to b
    await pollUntil(() => (a.dp.counters().outbound_drop_bad_vnet! > before.outbound_drop_bad_vnet! ? true : undefined), 'a lie read and dropped', 10_000);
    const c = a.dp.counters();
    expect(c.outbound_drop_bad_vnet! - before.outbound_drop_bad_vnet!).toBeLessThanOrEqual(BigInt(r.injected));
    expect(c.outbound_sent_packets! - before.outbound_sent_packets!).toBe(0n);
    expect(c.outbound_gso_splits! - before.outbound_gso_splits!).toBe(0n);
  });
});
