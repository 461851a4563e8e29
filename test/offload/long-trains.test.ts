// Long UDP_SEGMENT trains from the underlay (issue 8, item 1): a peer (here a namespace that b
// knows as peer 2) sends about a thousand trains of 128 datagrams each (UDP_MAX_SEGMENTS), every
// datagram a valid, coalescible inner TCP segment, back to back so that many trains share one
// receive batch. The node must live, account for every segment (delivered or dropped by a named
// reason), and keep forwarding — in plain and encrypted mode, with offloads on and off.
import { createCipheriv, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBed, type Bed, type BedNode } from '../bed/bed.js';
import { startStaticMesh } from '../bed/mesh.js';
import { startEncryptedMesh } from '../bed/encrypted-mesh.js';
import { pollUntil } from '../bed/proc.js';
import type { DataPlane } from '../../src/dataplane/dataplane.js';
import { parseAddress } from '../../src/util/ip.js';

const SENDER = path.resolve('test/bed/send-trains.py');
const SEGMENTS = 128; // the kernel's UDP_MAX_SEGMENTS
const TRAINS = 1000;
const BURSTS = 10; // each burst fits the receiver's socket buffer; the next waits until it is read
const PAYLOAD = 16; // inner TCP payload bytes per segment
const ATTACKER_SRC = '10.244.2.5';
const PORT_PLAIN = 8285;
const PORT_WG = 51820;

function sum16(b: Uint8Array, from: number, to: number, seed = 0): number {
  let s = seed;
  for (let i = from; i + 1 < to; i += 2) s += (b[i]! << 8) | b[i + 1]!;
  if ((to - from) & 1) s += b[to - 1]! << 8;
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return s;
}

/** An IPv4/TCP segment (ACK, valid checksums): 10.244.2.5:40000 -> dst:9, sequence seq. */
function tcpSegment(dst: string, seq: number): Uint8Array {
  const p = new Uint8Array(40 + PAYLOAD);
  const v = new DataView(p.buffer);
  p[0] = 0x45;
  v.setUint16(2, p.length);
  v.setUint16(6, 0x4000); // DF
  p[8] = 64;
  p[9] = 6;
  p.set(parseAddress(ATTACKER_SRC).bytes, 12);
  p.set(parseAddress(dst).bytes, 16);
  v.setUint16(10, ~sum16(p, 0, 20) & 0xffff);
  v.setUint16(20, 40000);
  v.setUint16(22, 9);
  v.setUint32(24, seq >>> 0);
  v.setUint32(28, 1);
  p[32] = 5 << 4;
  p[33] = 0x10; // ACK
  v.setUint16(34, 65535);
  p.fill(0x5a, 40);
  const pseudo = sum16(p, 12, 20) + 6 + (p.length - 20);
  v.setUint16(36, ~sum16(p, 20, p.length, pseudo) & 0xffff);
  return p;
}

/** A WireGuard transport message (type 4) for receiver index idx, sealed with key (node:crypto). */
function seal(key: Uint8Array, idx: number, counter: bigint, inner: Uint8Array): Uint8Array {
  const padded = new Uint8Array(Math.ceil(inner.length / 16) * 16);
  padded.set(inner);
  const nonce = Buffer.alloc(12);
  nonce.writeBigUInt64LE(counter, 4);
  const c = createCipheriv('chacha20-poly1305', key, nonce, { authTagLength: 16 });
  const body = Buffer.concat([c.update(padded), c.final(), c.getAuthTag()]);
  const m = Buffer.alloc(16 + body.length);
  m[0] = 4;
  m.writeUInt32LE(idx, 4);
  m.writeBigUInt64LE(counter, 8);
  body.copy(m, 16);
  return m;
}

/** Train records for send-trains.py: [seg u16 BE][len u32 BE][bytes]. */
function trainFile(trains: Uint8Array[][]): Buffer {
  return Buffer.concat(
    trains.map((segs) => {
      const h = Buffer.alloc(6);
      h.writeUInt16BE(segs[0]!.length, 0);
      h.writeUInt32BE(segs.reduce((n, s) => n + s.length, 0), 2);
      return Buffer.concat([h, ...segs]);
    }),
  );
}

const DROPS = [
  'inbound_drop_unknown_peer',
  'inbound_drop_spoofed_source',
  'inbound_drop_malformed',
  'inbound_drop_oversized',
  'inbound_drop_tun_write_error',
  'inbound_drop_plaintext',
  'inbound_drop_unknown_index',
  'inbound_drop_expired_session',
  'inbound_drop_decrypt',
  'inbound_drop_replay',
  'inbound_drop_cryptokey_routing',
];

const cases = [
  { mode: 'plain', offload: true },
  { mode: 'plain', offload: false },
  { mode: 'encrypted', offload: true },
  { mode: 'encrypted', offload: false },
] as const;

describe.each(cases)('128-segment trains, $mode mode, offload $offload', ({ mode, offload }) => {
  let bed: Bed;
  let attacker: BedNode;
  let dir: string;
  let stop = () => {};
  let a: { dp: DataPlane; node: BedNode; address: string };
  let b: { dp: DataPlane; node: BedNode; address: string };
  // encrypted mode: a session on b for peer 2 whose keys this test holds
  const recvKey = randomBytes(32);
  const localIndex = 0x2a0001;

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'tulle-trains-'));
    bed = await createBed({ nodes: 2, tag: 'tr' });
    attacker = await bed.addHost('atk', 66);
    const mesh = mode === 'plain' ? await startStaticMesh(bed, { offload }) : await startEncryptedMesh(bed, { offload });
    stop = () => mesh.stop();
    [a, b] = mesh.nodes as unknown as [typeof a, typeof b];
    const port = mode === 'plain' ? PORT_PLAIN : PORT_WG;
    b.dp.apply([
      { op: 'setPeer', peer: 2, address: attacker.underlayIp, port },
      { op: 'setRoute', subnet: '10.244.2.0/24', peer: 2 },
      ...(mode === 'encrypted'
        ? [{ op: 'installSession' as const, peer: 2, localIndex, remoteIndex: 7, role: 'current' as const, sendKey: randomBytes(32), receiveKey: recvKey }]
        : []),
    ]);
  }, 60_000);
  afterAll(async () => {
    stop();
    await bed?.teardown();
    rmSync(dir, { recursive: true, force: true });
  });

  it('lives, counts every segment, and keeps forwarding', async () => {
    const port = mode === 'plain' ? PORT_PLAIN : PORT_WG;
    let seq = 1000;
    let counter = 0n;
    const perBurst = TRAINS / BURSTS;
    let crowded = 0; // bursts whose receive batches averaged more than 32 trains
    for (let burst = 0; burst < BURSTS; burst++) {
      const trains = Array.from({ length: perBurst }, () =>
        Array.from({ length: SEGMENTS }, () => {
          const inner = tcpSegment(b.address, seq);
          seq += PAYLOAD;
          return mode === 'plain' ? inner : seal(recvKey, localIndex, counter++, inner);
        }),
      );
      const file = path.join(dir, `burst${burst}.bin`);
      writeFileSync(file, trainFile(trains));
      const before = b.dp.counters();
      const { stdout } = await bed.exec(attacker.ns, 'python3', [SENDER, file, b.node.underlayIp, String(port), attacker.underlayIp, String(port)], 20_000);
      expect(stdout).toMatch(new RegExp(`sent ${perBurst} trains`));
      const want = BigInt(perBurst * SEGMENTS);
      // every segment is read (the data plane lives), then accounted for
      const after = await pollUntil(() => {
        const c = b.dp.counters();
        return c.inbound_packets! - before.inbound_packets! >= want ? c : undefined;
      }, `burst ${burst}: ${want} segments read`, 20_000);
      const d = (k: string) => (after[k] ?? 0n) - (before[k] ?? 0n);
      expect(d('inbound_packets')).toBe(want);
      const dropped = Object.fromEntries(DROPS.map((k) => [k, d(k)]).filter(([, v]) => v !== 0n));
      expect(dropped).toEqual({});
      const delivered = await pollUntil(() => {
        const v = b.dp.counters().inbound_delivered_packets! - before.inbound_delivered_packets!;
        return v >= want ? v : undefined;
      }, `burst ${burst}: delivered`, 10_000);
      expect(delivered).toBe(want);
      if (offload && d('inbound_udp_datagrams') > 32n * d('inbound_batches')) crowded++;
    }
    // with UDP_GRO a batch of 64 trains of 128 carries 8192 segments: more than the coalescing
    // table's 4096 links; at least one burst must have been read in batches that full
    if (offload) expect(crowded).toBeGreaterThan(0);

    // the data plane still forwards both ways between a and b
    const ping = await bed.exec(a.node.ns, 'ping', ['-c', '5', '-i', '0.1', '-W', '2', b.address]);
    expect(ping.stdout).toMatch(/5 packets transmitted, 5 received/);
  }, 120_000);
});
