/**
 * Generated TCP/UDP packets for the offload tests: super-packets as the kernel hands them to a
 * TUN with TSO/USO (partial checksum, virtio-net header), and the segments of flows as they
 * arrive from a peer. A seeded PRNG (../unit/seeded-random.ts) keeps a failure reproducible.
 */
import {
  GSO_TCPV4,
  GSO_TCPV6,
  GSO_UDP_L4,
  VNET_F_NEEDS_CSUM,
  fold,
  pseudoSum,
  put16,
  put32,
  type VnetHdr,
} from '../../src/dataplane/offload-reference.js';


export interface FlowSpec {
  family: 4 | 6;
  proto: 6 | 17;
  src: Uint8Array;
  dst: Uint8Array;
  sport: number;
  dport: number;
  /** TCP options (length a multiple of 4, at most 40) */
  options: Uint8Array;
  ttl: number;
  tos: number;
  seq: number;
  ack: number;
  window: number;
  id: number;
}

export function randomFlow(rand: () => number, family?: 4 | 6, proto?: 6 | 17): FlowSpec {
  const fam = family ?? (rand() < 0.5 ? 4 : 6);
  const bytes = (n: number) => Uint8Array.from({ length: n }, () => Math.floor(rand() * 256));
  const optWords = Math.floor(rand() * 4) === 0 ? 0 : Math.floor(rand() * 11);
  const options = new Uint8Array(optWords * 4);
  // a timestamp-like option, then NOPs and random bytes: content does not matter to offloads
  for (let i = 0; i < options.length; i++) options[i] = i === 0 ? 1 : Math.floor(rand() * 256);
  return {
    family: fam,
    proto: proto ?? (rand() < 0.7 ? 6 : 17),
    src: fam === 4 ? Uint8Array.of(10, 244, 1, 1 + Math.floor(rand() * 250)) : bytes(16),
    dst: fam === 4 ? Uint8Array.of(10, 244, 2, 1 + Math.floor(rand() * 250)) : bytes(16),
    sport: 1 + Math.floor(rand() * 65534),
    dport: 1 + Math.floor(rand() * 65534),
    options,
    ttl: 1 + Math.floor(rand() * 255),
    tos: Math.floor(rand() * 256) & 0xfc,
    seq: Math.floor(rand() * 0x100000000),
    ack: Math.floor(rand() * 0x100000000),
    window: Math.floor(rand() * 65536),
    id: Math.floor(rand() * 65536),
  };
}


export function headerLen(f: FlowSpec): { l4: number; l4len: number } {
  return { l4: f.family === 4 ? 20 : 40, l4len: f.proto === 6 ? 20 + f.options.length : 8 };
}

/**
 * One packet of the flow carrying `payload`, with the given TCP flags. `checksum`: 'full'
 * writes the real checksum, 'partial' the folded pseudo-header sum (what the kernel leaves for
 * NEEDS_CSUM). IPv4 total length / IPv6 payload length cover the whole packet.
 */
export function buildPacket(f: FlowSpec, payload: Uint8Array, tcpFlags: number, checksum: 'full' | 'partial'): Uint8Array {
  const { l4, l4len } = headerLen(f);
  const p = new Uint8Array(l4 + l4len + payload.length);
  if (f.family === 4) {
    p[0] = 0x45;
    p[1] = f.tos;
    put16(p, 2, Math.min(p.length, 0xffff));
    put16(p, 4, f.id);
    p[6] = 0x40; // DF
    p[8] = f.ttl;
    p[9] = f.proto;
    p.set(f.src, 12);
    p.set(f.dst, 16);
    let s = 0;
    for (let i = 0; i < 20; i += 2) s += (p[i]! << 8) | p[i + 1]!;
    put16(p, 10, ~fold(s) & 0xffff);
  } else {
    p[0] = 0x60 | (f.tos >> 4);
    p[1] = (f.tos & 0x0f) << 4;
    put16(p, 4, p.length - 40);
    p[6] = f.proto;
    p[7] = f.ttl;
    p.set(f.src, 8);
    p.set(f.dst, 24);
  }
  if (f.proto === 6) {
    put16(p, l4, f.sport);
    put16(p, l4 + 2, f.dport);
    put32(p, l4 + 4, f.seq);
    put32(p, l4 + 8, f.ack);
    p[l4 + 12] = (l4len / 4) << 4;
    p[l4 + 13] = tcpFlags;
    put16(p, l4 + 14, f.window);
    p.set(f.options, l4 + 20);
  } else {
    put16(p, l4, f.sport);
    put16(p, l4 + 2, f.dport);
    put16(p, l4 + 4, Math.min(p.length - l4, 0xffff));
  }
  p.set(payload, l4 + l4len);
  const csumAt = l4 + (f.proto === 6 ? 16 : 6);
  const ps = fold(pseudoSum(p, f.proto, p.length - l4));
  if (checksum === 'partial') {
    put16(p, csumAt, ps);
  } else {
    let s = ps;
    for (let i = l4; i < p.length; i += 2) s += (p[i]! << 8) | (i + 1 < p.length ? p[i + 1]! : 0);
    let c = ~fold(s) & 0xffff;
    if (f.proto === 17 && c === 0) c = 0xffff;
    put16(p, csumAt, c);
  }
  return p;
}

/** A TUN super-packet: header as the kernel fills it (hdr_len deliberately unreliable). */
export function superPacket(f: FlowSpec, payload: Uint8Array, gsoSize: number, tcpFlags: number): { vnet: VnetHdr; pkt: Uint8Array } {
  const { l4, l4len } = headerLen(f);
  const pkt = buildPacket(f, payload, tcpFlags, 'partial');
  const gsoType = f.proto === 17 ? GSO_UDP_L4 : f.family === 4 ? GSO_TCPV4 : GSO_TCPV6;
  return {
    vnet: { flags: VNET_F_NEEDS_CSUM, gsoType, hdrLen: l4 + l4len + 7, gsoSize, csumStart: l4, csumOffset: f.proto === 6 ? 16 : 6 },
    pkt,
  };
}

export function randomBytes(rand: () => number, n: number): Uint8Array {
  return Uint8Array.from({ length: n }, () => Math.floor(rand() * 256));
}

export const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
