/**
 * Differential tests of the native offload stages against the TypeScript reference, on
 * generated packets: random sizes, TCP options, IPv4 and IPv6, TCP and UDP. Checksums are
 * verified independently by the reference's RFC 1071 sum.
 */
import { describe, expect, it } from 'vitest';
import { loadAddon } from '../../src/dataplane/native.js';
import {
  GSO_NONE,
  GSO_TCPV4,
  GSO_TCPV6,
  GSO_UDP_L4,
  VNET_F_NEEDS_CSUM,
  checksumsValid,
  decodeVnet,
  encodeVnet,
  put16,
  referenceCoalesce,
  referenceSplit,
  transport,
} from '../../src/dataplane/offload-reference.js';
import { buildPacket, headerLen, hex, randomBytes, randomFlow, superPacket, type FlowSpec } from './packets.js';
import { seededRandom } from '../unit/seeded-random.js';

const addon = loadAddon();

function nativeSplit(vnet: Parameters<typeof encodeVnet>[0], pkt: Uint8Array): Uint8Array[] | number {
  return addon.offloadSplit(encodeVnet(vnet), pkt);
}

describe('segmentation (TUN super-packet -> segments)', () => {
  it('matches the reference on random TCP/UDP super-packets, IPv4 and IPv6', () => {
    const rand = seededRandom(0x5eed1);
    for (let n = 0; n < 400; n++) {
      const f = randomFlow(rand);
      const gsoSize = 1 + Math.floor(rand() * 1500);
      const { l4, l4len } = headerLen(f);
      const max = Math.min(65535 - l4 - l4len, gsoSize * 64);
      const payloadLen = Math.floor(rand() * (max + 1));
      const flags = f.proto === 6 ? [0x10, 0x18, 0x19, 0x90, 0x98][Math.floor(rand() * 5)]! : 0;
      const { vnet, pkt } = superPacket(f, randomBytes(rand, payloadLen), gsoSize, flags);
      const got = nativeSplit(vnet, pkt);
      const want = referenceSplit(vnet, pkt)!;
      expect(typeof got).not.toBe('number');
      const segs = got as Uint8Array[];
      expect(segs.map(hex)).toEqual(want.map(hex));
      // independent checks: checksums verify, payload reassembles, flags where they belong
      let reassembled = 0;
      segs.forEach((s, i) => {
        expect(checksumsValid(s)).toBe(true);
        expect(s.length).toBeLessThanOrEqual(l4 + l4len + gsoSize);
        expect(Buffer.compare(s.subarray(l4 + l4len), pkt.subarray(l4 + l4len + reassembled, l4 + l4len + reassembled + s.length - l4 - l4len))).toBe(0);
        reassembled += s.length - l4 - l4len;
        if (f.proto === 6) {
          const fl = s[l4 + 13]!;
          if (i < segs.length - 1) expect(fl & 0x09).toBe(0);
          else expect(fl & 0x09).toBe(flags & 0x09);
          if (i > 0) expect(fl & 0x80).toBe(0);
        }
      });
      expect(reassembled).toBe(payloadLen);
    }
  });

  it('completes a partial checksum of a single packet (GSO_NONE + NEEDS_CSUM)', () => {
    const rand = seededRandom(7);
    for (let n = 0; n < 200; n++) {
      const f = randomFlow(rand);
      const { l4 } = headerLen(f);
      const pkt = buildPacket(f, randomBytes(rand, Math.floor(rand() * 1400)), 0x18, 'partial');
      const vnet = { flags: VNET_F_NEEDS_CSUM, gsoType: GSO_NONE, hdrLen: 0, gsoSize: 0, csumStart: l4, csumOffset: f.proto === 6 ? 16 : 6 };
      const got = nativeSplit(vnet, pkt) as Uint8Array[];
      expect(got.length).toBe(1);
      expect(hex(got[0]!)).toBe(hex(referenceSplit(vnet, pkt)![0]!));
      expect(checksumsValid(got[0]!)).toBe(true);
    }
  });

  it('rejects headers inconsistent with the packet', () => {
    const rand = seededRandom(9);
    const f4 = randomFlow(rand, 4, 6);
    const { vnet, pkt } = superPacket(f4, randomBytes(rand, 5000), 1400, 0x10);
    expect(nativeSplit({ ...vnet, gsoType: GSO_TCPV6 }, pkt)).toBe(-1); // family mismatch
    expect(nativeSplit({ ...vnet, csumOffset: 6 }, pkt)).toBe(-1);
    expect(nativeSplit({ ...vnet, csumStart: 24 }, pkt)).toBe(-1);
    expect(nativeSplit({ ...vnet, gsoSize: 0 }, pkt)).toBe(-1);
    expect(nativeSplit({ ...vnet, gsoType: 3 }, pkt)).toBe(-1); // UFO
    expect(nativeSplit({ ...vnet, gsoSize: 1 }, pkt)).toBe(-2); // 5000 segments: no room
    expect(nativeSplit({ ...vnet, gsoType: GSO_TCPV4 }, pkt.subarray(0, 30))).toBe(-1);
  });
});

/** Segments of a few interleaved flows as a peer would send them, with some mischief. */
function arrivals(rand: () => number): Uint8Array[] {
  const flows: FlowSpec[] = [];
  const nFlows = 1 + Math.floor(rand() * 4);
  for (let i = 0; i < nFlows; i++) flows.push(randomFlow(rand));
  if (rand() < 0.3) flows.push({ ...flows[0]!, sport: flows[0]!.sport ^ 1 }); // a near-twin flow
  const queues = flows.map((f) => {
    const out: Uint8Array[] = [];
    const gso = 1 + Math.floor(rand() * 1400);
    for (let sp = 0; sp < 1 + Math.floor(rand() * 3); sp++) {
      const { l4, l4len } = headerLen(f);
      const payload = Math.floor(rand() * Math.min(20000, gso * 60, 65535 - l4 - l4len));
      const psh = f.proto === 6 && rand() < 0.5 ? 0x18 : 0x10;
      const { vnet, pkt } = superPacket(f, randomBytes(rand, payload), gso, psh);
      const segs = referenceSplit(vnet, pkt)!;
      out.push(...segs);
      f.seq = (f.seq + payload) >>> 0;
      f.id = (f.id + segs.length) & 0xffff;
      if (rand() < 0.2) f.ack = (f.ack + 1000) >>> 0; // ACK moved: no merge across
      if (rand() < 0.1) f.window = (f.window + 1) & 0xffff;
    }
    return out;
  });
  const all: Uint8Array[] = [];
  while (queues.some((q) => q.length)) {
    const q = queues[Math.floor(rand() * queues.length)]!;
    const run = 1 + Math.floor(rand() * 8);
    for (let i = 0; i < run && q.length; i++) all.push(q.shift()!);
  }
  for (let i = 0; i < all.length; i++) {
    const r = rand();
    const p = all[i]!;
    const { l4 } = transport(p);
    if (r < 0.02) p[p.length - 1]! ^= 0x40; // corrupt: must not be merged
    else if (r < 0.04 && i + 1 < all.length) [all[i], all[i + 1]] = [all[i + 1]!, p]; // reordered
    else if (r < 0.05) all.splice(i, 0, Uint8Array.of(0x45, 0, 0, 28, 0, 0, 0x40, 0, 64, 1, 0, 0, 10, 244, 1, 1, 10, 244, 2, 2, 8, 0, 0, 0, 0, 0, 0, 0)); // ICMP
    else if (r < 0.06 && p[9] === 6 && (p[0]! >> 4) === 4) p[l4 + 13] = 0x11; // a FIN
  }
  return all;
}

describe('coalescing (received segments -> TUN super-packets)', () => {
  it('matches the reference byte for byte on random interleaved flows', () => {
    const rand = seededRandom(0xc0a1);
    let merged = 0;
    for (let n = 0; n < 150; n++) {
      const pkts = arrivals(rand);
      const udp = rand() < 0.7;
      const tcp = rand() < 0.9;
      const trusted = rand() < 0.5;
      const got = addon.offloadCoalesce(pkts.map((p) => p.slice()), tcp, udp, trusted);
      const want = referenceCoalesce(pkts, { tcp, udp, trusted });
      expect(got.map((o) => [hex(o.vnet), hex(o.packet), o.segments])).toEqual(want.map((o) => [hex(o.vnet), hex(o.packet), o.segments]));
      merged += got.filter((o) => o.segments > 1).length;
    }
    expect(merged).toBeGreaterThan(100);
  });

  it('what the kernel would segment back out equals what came in, flow by flow', () => {
    const rand = seededRandom(0xbeef);
    for (let n = 0; n < 100; n++) {
      const pkts = arrivals(rand);
      const out = addon.offloadCoalesce(pkts.map((p) => p.slice()), true, true);
      const back: Uint8Array[] = [];
      for (const o of out) {
        const h = decodeVnet(o.vnet);
        if (o.segments === 1) {
          expect(h.gsoType).toBe(GSO_NONE);
          // NEEDS_CSUM (the kernel then checks nothing) only on what verified; the rest untouched
          expect([0, VNET_F_NEEDS_CSUM]).toContain(h.flags);
          const kernel = referenceSplit(h, o.packet)![0]!;
          if (h.flags & VNET_F_NEEDS_CSUM) expect(checksumsValid(kernel)).toBe(true);
          back.push(kernel);
          continue;
        }
        expect(h.flags).toBe(VNET_F_NEEDS_CSUM);
        expect([GSO_TCPV4, GSO_TCPV6, GSO_UDP_L4]).toContain(h.gsoType);
        const segs = referenceSplit(h, o.packet)!;
        expect(segs.length).toBe(o.segments);
        back.push(...segs);
      }
      // every packet comes back exactly once, and the order within each flow is kept
      const key = (p: Uint8Array) => {
        const { l4 } = transport(p);
        return hex((p[0]! >> 4) === 4 ? p.subarray(12, 20) : p.subarray(8, 40)) + hex(p.subarray(l4, l4 + 4)) + p[9];
      };
      // GRO renumbers IPv4 ids of DF packets, as the kernel's does (RFC 6864): ignore id and header checksum
      const norm = (p: Uint8Array) => {
        const c = p.slice();
        if ((c[0]! >> 4) === 4) c[4] = c[5] = c[10] = c[11] = 0;
        return hex(c);
      };
      const byFlow = (list: Uint8Array[]) => {
        const m = new Map<string, string[]>();
        for (const p of list) m.set(key(p), [...(m.get(key(p)) ?? []), norm(p)]);
        return m;
      };
      expect(byFlow(back)).toEqual(byFlow(pkts));
    }
  });

  it('never merges a segment whose checksum is wrong, and coalesces nothing when told not to', () => {
    const rand = seededRandom(3);
    const f = randomFlow(rand, 4, 6);
    const { vnet, pkt } = superPacket(f, randomBytes(rand, 14000), 1400, 0x10);
    const segs = referenceSplit(vnet, pkt)!;
    segs[3]![60]! ^= 1;
    const out = addon.offloadCoalesce(segs, true, true);
    expect(out.map((o) => o.segments)).toEqual([3, 1, 6]);
    expect(decodeVnet(out[1]!.vnet).flags).toBe(0); // handed over untouched, for the kernel to reject
    expect(addon.offloadCoalesce(segs, false, false).every((o) => o.segments === 1)).toBe(true);
  });

  it('sums no checksum of bytes vouched for (trusted), but never vouches for a UDP packet without one', () => {
    const rand = seededRandom(5);
    const f = randomFlow(rand, 4, 6);
    const { vnet, pkt } = superPacket(f, randomBytes(rand, 14000), 1400, 0x10);
    const segs = referenceSplit(vnet, pkt)!;
    segs[3]![segs[3]!.length - 1]! ^= 1; // a checksum the sender got wrong: only a sum would notice
    const out = addon.offloadCoalesce(segs.map((s) => s.slice()), true, true, true);
    expect(out.map((o) => o.segments)).toEqual([10]); // not summed, so merged
    // the kernel completes the checksum over the bytes as they came
    const back = referenceSplit(decodeVnet(out[0]!.vnet), out[0]!.packet)!;
    expect(back.every(checksumsValid)).toBe(true);
    expect(hex(back[3]!.subarray(transport(segs[3]!).l4 + 20))).toBe(hex(segs[3]!.subarray(transport(segs[3]!).l4 + 20)));
    // a lone verified packet: NEEDS_CSUM with the pseudo-header sum, the kernel's sum gives it back
    const [one] = addon.offloadCoalesce([segs[0]!.slice()], true, true);
    const h = decodeVnet(one!.vnet);
    expect([h.flags, h.gsoType, h.csumStart, h.csumOffset]).toEqual([VNET_F_NEEDS_CSUM, GSO_NONE, transport(segs[0]!).l4, f.proto === 6 ? 16 : 6]);
    expect(hex(one!.packet)).not.toBe(hex(segs[0]!));
    expect(hex(referenceSplit(h, one!.packet)![0]!)).toBe(hex(segs[0]!));
    // UDP without a checksum: trusted or not, written untouched and never merged
    const u = randomFlow(rand, 4, 17);
    const us = superPacket(u, randomBytes(rand, 3000), 1000, 0);
    const usegs = referenceSplit(us.vnet, us.pkt)!;
    for (const s of usegs) put16(s, transport(s).l4 + 6, 0);
    const uout = addon.offloadCoalesce(usegs.map((s) => s.slice()), true, true, true);
    expect(uout.map((o) => [o.segments, decodeVnet(o.vnet).flags])).toEqual([[1, 0], [1, 0], [1, 0]]);
    expect(uout.map((o) => hex(o.packet))).toEqual(usegs.map(hex));
  });

  it('the test entry point feeds the coalescer only what the inbound checks would pass', () => {
    const rand = seededRandom(4);
    const f = randomFlow(rand, 4, 6);
    const { vnet, pkt } = superPacket(f, randomBytes(rand, 3000), 1000, 0x10);
    const segs = referenceSplit(vnet, pkt)!;
    const bad = [
      new Uint8Array(0),
      Uint8Array.from([0x45]), // shorter than its header
      segs[0]!.subarray(0, 30), // IPv4 total length says more than there is
      Uint8Array.from([0x60, ...new Uint8Array(20)]), // shorter than an IPv6 header
      Uint8Array.from([0x15, ...segs[0]!.subarray(1)]), // version 1
    ];
    for (const b of bad) expect(() => addon.offloadCoalesce([...segs, b], true, true)).toThrow(/not a well-formed IP packet/);
    expect(addon.offloadCoalesce(segs, true, true).map((o) => o.segments)).toEqual([3]);
  });
});
