// Hostile input from the underlay: nothing of it reaches the receiving TUN (proved by a capture on
// that TUN), each datagram is counted under its reason, and legitimate traffic keeps flowing.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBed, type Bed, type BedNode } from '../bed/bed.js';
import { startStaticMesh, type Mesh } from '../bed/mesh.js';
import { pollUntil, waitForOutput } from '../bed/proc.js';
import { readPcap } from '../bed/pcap.js';
import { contains, hex, ipv4Udp } from '../bed/craft.js';
import { stopProcess } from '../bed/bed.js';

const MARKER = new TextEncoder().encode('HOSTILE-INPUT-MARKER');
const SENDER = path.resolve('test/bed/send-datagrams.mjs');

describe('hostile input from the underlay', () => {
  let bed: Bed;
  let mesh: Mesh;
  let attacker: BedNode;
  let dir: string;
  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'tulle-hostile-'));
    bed = await createBed({ nodes: 2 });
    attacker = await bed.addHost('attacker', 66);
    mesh = await startStaticMesh(bed);
    // a third node that exists only in the receiver's table (its subnet is someone else's)
    mesh.nodes[1]!.dp.apply([
      { op: 'setPeer', peer: 2, address: '198.18.0.12', port: 8285 },
      { op: 'setRoute', subnet: '10.244.2.0/24', peer: 2 },
    ]);
  });
  afterAll(async () => {
    mesh?.stop();
    await bed?.teardown();
    rmSync(dir, { recursive: true, force: true });
  });

  it('drops and counts every kind, delivers none of it, and keeps forwarding', async () => {
    const [a, b] = mesh.nodes as [Mesh['nodes'][0], Mesh['nodes'][0]];
    const to = b.address;
    const payload = (n = 64) => new Uint8Array([...MARKER, ...randomBytes(n)]);

    // from a known peer (node a)
    const random = Array.from({ length: 300 }, () => {
      const p = new Uint8Array([...randomBytes(1 + Math.floor(Math.random() * 1400)), ...MARKER]);
      p[0] = (p[0]! & 0x3f) | 0x80; // first nibble 8..b: never IPv4/IPv6
      return p;
    });
    const good = ipv4Udp(a.address, to, payload());
    const truncated = [
      good.subarray(0, 10), // shorter than an IPv4 header
      good.subarray(0, good.length - 5), // total length says more than arrived
      Uint8Array.from([...good, ...MARKER]), // total length says less than arrived
      Uint8Array.from([0x60, ...randomBytes(19), ...MARKER]), // shorter than an IPv6 header
      Uint8Array.from([0x44, ...good.subarray(1)]), // IHL 4 (< 5)
    ];
    const malformed = [...random, ...truncated];
    const spoofed = [
      ipv4Udp('10.244.2.7', to, payload()), // another node's subnet
      ipv4Udp('10.99.0.1', to, payload()), // nobody's subnet
      ipv4Udp(b.address, to, payload()), // the receiver's own subnet
    ];
    const oversized = [ipv4Udp(a.address, to, payload(2000))];
    // from an address that is no peer at all, with an inner source that would pass
    const unknown = Array.from({ length: 50 }, () => ipv4Udp(a.address, to, payload()));

    const capture = bed.spawn(b.node.ns, 'tcpdump', ['-i', b.dp.tunName, '-n', '-U', '--immediate-mode', '-s', '0', '-w', path.join(dir, 'tun.pcap')]);
    await waitForOutput(capture, /listening on/);
    const before = b.dp.counters();
    const pings = bed.exec(a.node.ns, 'ping', ['-c', '30', '-i', '0.05', '-W', '2', to]);

    const send = async (from: BedNode, name: string, datagrams: Uint8Array[]) => {
      const file = path.join(dir, `${name}.hex`);
      writeFileSync(file, datagrams.map(hex).join('\n'));
      const { stdout } = await bed.exec(from.ns, process.execPath, [SENDER, file, b.node.underlayIp, '8285']);
      expect(stdout).toMatch(new RegExp(`sent ${datagrams.length}`));
    };
    await send(a.node, 'malformed', malformed);
    await send(a.node, 'spoofed', spoofed);
    await send(a.node, 'oversized', oversized);
    await send(attacker, 'unknown', unknown);
    // legitimate traffic continues during and after the barrage
    expect((await pings).stdout).toMatch(/30 packets transmitted, 30 received/);

    const want = {
      inbound_drop_malformed: BigInt(malformed.length),
      inbound_drop_spoofed_source: BigInt(spoofed.length),
      inbound_drop_oversized: BigInt(oversized.length),
      inbound_drop_unknown_peer: BigInt(unknown.length),
    };
    const delta = () => {
      const now = b.dp.counters();
      return Object.fromEntries(Object.keys(want).map((k) => [k, now[k]! - before[k]!]));
    };
    await pollUntil(() => (JSON.stringify(delta(), (_, v) => String(v)) === JSON.stringify(want, (_, v) => String(v)) ? true : undefined), 'drop counters', 5000).catch(() => undefined);
    expect(delta()).toEqual(want);

    await stopProcess(capture);
    const packets = readPcap(path.join(dir, 'tun.pcap'));
    expect(packets.length).toBeGreaterThanOrEqual(60); // 30 echo requests in, 30 replies out
    expect(packets.filter((p) => contains(p, MARKER))).toHaveLength(0);
    const after = b.dp.counters();
    expect(after.inbound_delivered_packets! - before.inbound_delivered_packets!).toBe(30n);
  });
});
