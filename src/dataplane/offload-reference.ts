/**
 * The slow, obviously-right model of the native offload stages (native/src/gso.c, gro.c),
 * for differential tests on generated packets: segmentation of a TUN super-packet described
 * by a virtio-net header, and coalescing of received segments into super-packets.
 * Written from the RFCs and the rules in gro.h, one byte at a time, with no shared code.
 */

export const VNET_HDR_LEN = 10;
export const VNET_F_NEEDS_CSUM = 1;
export const VNET_F_DATA_VALID = 2;
export const GSO_NONE = 0;
export const GSO_TCPV4 = 1;
export const GSO_TCPV6 = 4;
export const GSO_UDP_L4 = 5;

const MAX_SEGS = 64;

export interface VnetHdr {
  flags: number;
  gsoType: number;
  hdrLen: number;
  gsoSize: number;
  csumStart: number;
  csumOffset: number;
}

export function encodeVnet(h: VnetHdr): Uint8Array {
  const b = new Uint8Array(VNET_HDR_LEN);
  const v = new DataView(b.buffer);
  b[0] = h.flags;
  b[1] = h.gsoType;
  v.setUint16(2, h.hdrLen, true);
  v.setUint16(4, h.gsoSize, true);
  v.setUint16(6, h.csumStart, true);
  v.setUint16(8, h.csumOffset, true);
  return b;
}

export function decodeVnet(b: Uint8Array): VnetHdr {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  return {
    flags: b[0]!,
    gsoType: b[1]!,
    hdrLen: v.getUint16(2, true),
    gsoSize: v.getUint16(4, true),
    csumStart: v.getUint16(6, true),
    csumOffset: v.getUint16(8, true),
  };
}

export const u16 = (b: Uint8Array, at: number) => (b[at]! << 8) | b[at + 1]!;
export const u32 = (b: Uint8Array, at: number) => ((b[at]! << 24) | (b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!) >>> 0;
export const put16 = (b: Uint8Array, at: number, v: number) => {
  b[at] = (v >> 8) & 0xff;
  b[at + 1] = v & 0xff;
};
export const put32 = (b: Uint8Array, at: number, v: number) => {
  put16(b, at, (v >>> 16) & 0xffff);
  put16(b, at + 2, v & 0xffff);
};

/** RFC 1071 ones' complement sum of 16-bit big-endian words, unfolded. */
export function onesSum(b: Uint8Array, start = 0, end = b.length, seed = 0): number {
  let s = seed;
  for (let i = start; i < end; i += 2) s += (b[i]! << 8) | (i + 1 < end ? b[i + 1]! : 0);
  return s;
}

export function fold(s: number): number {
  while (s > 0xffff) s = (s & 0xffff) + Math.floor(s / 0x10000);
  return s;
}

export function family(p: Uint8Array): 4 | 6 {
  return (p[0]! >> 4) === 4 ? 4 : 6;
}

/** Sum of the TCP/UDP pseudo-header. */
export function pseudoSum(p: Uint8Array, proto: number, l4Length: number): number {
  const [src, alen] = family(p) === 4 ? [12, 4] : [8, 16];
  return onesSum(p, src, src + 2 * alen) + proto + (l4Length & 0xffff) + Math.floor(l4Length / 0x10000);
}

/** Transport header offset (IPv4 ihl, or 40 for IPv6 without extension headers) and protocol. */
export function transport(p: Uint8Array): { l4: number; proto: number } {
  return family(p) === 4 ? { l4: (p[0]! & 0x0f) * 4, proto: p[9]! } : { l4: 40, proto: p[6]! };
}

/** True when the IPv4 header checksum (if IPv4) and the TCP/UDP checksum both verify. */
export function checksumsValid(p: Uint8Array): boolean {
  const { l4, proto } = transport(p);
  if (family(p) === 4 && fold(onesSum(p, 0, l4)) !== 0xffff) return false;
  if (proto !== 6 && proto !== 17) return true;
  return fold(onesSum(p, l4, p.length, pseudoSum(p, proto, p.length - l4))) === 0xffff;
}

/** The transport checksum a correct sender would have written (0 stands for 0xffff in UDP). */
function fillChecksum(p: Uint8Array, l4: number, proto: number): void {
  const at = l4 + (proto === 6 ? 16 : 6);
  put16(p, at, 0);
  let c = ~fold(onesSum(p, l4, p.length, pseudoSum(p, proto, p.length - l4))) & 0xffff;
  if (proto === 17 && c === 0) c = 0xffff;
  put16(p, at, c);
}

function fillIp4Checksum(p: Uint8Array): void {
  put16(p, 10, 0);
  put16(p, 10, ~fold(onesSum(p, 0, (p[0]! & 0x0f) * 4)) & 0xffff);
}

/** Splits a super-packet as the kernel's TSO/USO would; null where the native side errs. */
export function referenceSplit(h: VnetHdr, pkt: Uint8Array): Uint8Array[] | null {
  if (h.gsoType === GSO_NONE) {
    const out = pkt.slice();
    if (h.flags & VNET_F_NEEDS_CSUM) {
      const at = h.csumStart + h.csumOffset;
      if (h.csumStart >= out.length || at + 2 > out.length) return null;
      let c = ~fold(onesSum(out, h.csumStart, out.length)) & 0xffff;
      if (c === 0 && h.csumOffset === 6) c = 0xffff;
      put16(out, at, c);
    }
    return [out];
  }
  const tcp = h.gsoType !== GSO_UDP_L4;
  const l4 = h.csumStart;
  const l4len = tcp ? (pkt[l4 + 12]! >> 4) * 4 : 8;
  const hlen = l4 + l4len;
  const payload = pkt.length - hlen;
  const n = payload === 0 ? 1 : Math.ceil(payload / h.gsoSize);
  const out: Uint8Array[] = [];
  for (let i = 0; i < n; i++) {
    const dlen = Math.min(h.gsoSize, payload - i * h.gsoSize);
    const s = new Uint8Array(hlen + dlen);
    s.set(pkt.subarray(0, hlen));
    s.set(pkt.subarray(hlen + i * h.gsoSize, hlen + i * h.gsoSize + dlen), hlen);
    if (family(s) === 4) {
      put16(s, 2, s.length);
      put16(s, 4, (u16(pkt, 4) + i) & 0xffff);
      fillIp4Checksum(s);
    } else {
      put16(s, 4, s.length - 40);
    }
    if (tcp) {
      put32(s, l4 + 4, (u32(pkt, l4 + 4) + i * h.gsoSize) >>> 0);
      if (i > 0) s[l4 + 13]! &= ~0x80; // CWR on the first segment only
      if (i < n - 1) s[l4 + 13]! &= ~0x09; // FIN and PSH on the last only
    } else {
      put16(s, l4 + 4, 8 + dlen);
    }
    fillChecksum(s, l4, tcp ? 6 : 17);
    out.push(s);
  }
  return out;
}

export interface Coalesced {
  vnet: Uint8Array;
  packet: Uint8Array;
  segments: number;
}

interface Item {
  parts: Uint8Array[]; // head packet, then payloads
  kind: 'tcp' | 'udp' | 'none';
  verified: boolean;
  closed: boolean;
  psh: boolean;
  l4: number;
  l4len: number;
  gsoSize: number;
  nextSeq: number;
  total: number;
}

/** The flow's key (addresses, protocol, ports), or undefined when the packet has no ports to
 * read. An IPv4 packet with options or a first fragment has a key (a later segment of its flow
 * must not overtake it) but is never merged: see coalescible. */
function flowKey(p: Uint8Array): string | undefined {
  const fam = family(p);
  if (fam === 4 && ((p[0]! & 0x0f) < 5 || (p[0]! & 0x0f) * 4 > p.length || (p[6]! & 0x1f) !== 0 || p[7] !== 0)) return undefined;
  const { l4, proto } = transport(p);
  if (proto === 6 ? p.length < l4 + 20 : proto === 17 ? p.length < l4 + 8 : true) return undefined;
  if (proto === 6) {
    const l4len = (p[l4 + 12]! >> 4) * 4;
    if (l4len < 20 || l4 + l4len > p.length) return undefined;
  }
  const a = fam === 4 ? p.subarray(12, 20) : p.subarray(8, 40);
  return `${proto}/${Array.from(a).join('.')}/${u16(p, l4)}/${u16(p, l4 + 2)}`;
}

function sameIpFields(a: Uint8Array, b: Uint8Array): boolean {
  if (family(a) === 4) return a[1] === b[1] && a[8] === b[8] && a[6]! >> 5 === b[6]! >> 5;
  return a[0] === b[0] && a[1] === b[1] && a[2] === b[2] && a[3] === b[3] && a[7] === b[7];
}

const equalBytes = (a: Uint8Array, b: Uint8Array) => a.length === b.length && a.every((x, i) => x === b[i]);

/** Coalesces a batch by the rules in native/src/gro.h. trusted: the bytes are vouched for (the
 * kernel verified the outer UDP checksum, or the AEAD opened them): transport checksums are not
 * summed, and what passes the structural checks goes out NEEDS_CSUM. */
export function referenceCoalesce(packets: readonly Uint8Array[], opts: { tcp: boolean; udp: boolean; trusted?: boolean }): Coalesced[] {
  const items: Item[] = [];
  const latest = new Map<string, Item>();
  for (const p of packets) {
    const key = flowKey(p);
    const { l4, proto } = transport(p);
    const tcp = proto === 6;
    const coalescible = family(p) === 6 || ((p[0]! & 0x0f) === 5 && (p[6]! & 0x3f) === 0 && p[7] === 0);
    // TCP or UDP in a form the coalescer reads (verified, and merged if the options allow)
    let kind: Item['kind'] = key && coalescible && (tcp || proto === 17) ? (tcp ? 'tcp' : 'udp') : 'none';
    let verified = false;
    let mergeable = false;
    const l4len = kind === 'none' ? 0 : tcp ? (p[l4 + 12]! >> 4) * 4 : 8;
    const payload = p.length - l4 - l4len;
    let psh = false;
    if (kind !== 'none') {
      const udpOk = tcp || (u16(p, l4 + 6) !== 0 && u16(p, l4 + 4) === p.length - l4);
      if (!udpOk || !(opts.trusted || checksumsValidL4(p, l4, proto))) {
        kind = 'none';
      } else {
        verified = true;
        const flags = tcp ? p[l4 + 13]! : 0x10;
        psh = tcp && (flags & 0x08) !== 0;
        mergeable = (tcp ? opts.tcp : opts.udp) && payload > 0 && (flags === 0x10 || flags === 0x18);
      }
    }
    const prev = key ? latest.get(key) : undefined;
    if (
      mergeable &&
      prev &&
      prev.kind === kind &&
      !prev.closed &&
      prev.l4len === l4len &&
      payload <= prev.gsoSize &&
      prev.total + payload <= 65535 &&
      sameIpFields(prev.parts[0]!, p) &&
      (kind === 'udp' ||
        (u32(p, l4 + 4) === prev.nextSeq &&
          equalBytes(p.subarray(l4 + 8, l4 + 12), prev.parts[0]!.subarray(l4 + 8, l4 + 12)) &&
          equalBytes(p.subarray(l4 + 14, l4 + 16), prev.parts[0]!.subarray(l4 + 14, l4 + 16)) &&
          equalBytes(p.subarray(l4 + 20, l4 + l4len), prev.parts[0]!.subarray(l4 + 20, l4 + l4len))))
    ) {
      prev.parts.push(p.slice(l4 + l4len));
      prev.total += payload;
      prev.nextSeq = (prev.nextSeq + payload) >>> 0;
      prev.psh ||= psh;
      if (prev.parts.length >= MAX_SEGS || payload < prev.gsoSize || psh) prev.closed = true;
      continue;
    }
    const item: Item = {
      parts: [p.slice()],
      kind,
      verified,
      closed: psh || !mergeable,
      psh,
      l4,
      l4len,
      gsoSize: payload,
      nextSeq: kind === 'tcp' ? (u32(p, l4 + 4) + payload) >>> 0 : 0,
      total: p.length,
    };
    items.push(item);
    if (key) latest.set(key, item);
  }
  return items.map(finish);
}

function checksumsValidL4(p: Uint8Array, l4: number, proto: number): boolean {
  return fold(onesSum(p, l4, p.length, pseudoSum(p, proto, p.length - l4))) === 0xffff;
}

function finish(it: Item): Coalesced {
  if (it.parts.length === 1) {
    const p = it.parts[0]!;
    if (!it.verified) return { vnet: encodeVnet({ flags: 0, gsoType: 0, hdrLen: 0, gsoSize: 0, csumStart: 0, csumOffset: 0 }), packet: p, segments: 1 };
    // verified: the pseudo-header sum only, for the kernel to complete (it then sums nothing)
    const tcp = it.kind === 'tcp';
    put16(p, it.l4 + (tcp ? 16 : 6), fold(pseudoSum(p, tcp ? 6 : 17, p.length - it.l4)));
    const vnet = encodeVnet({ flags: VNET_F_NEEDS_CSUM, gsoType: 0, hdrLen: it.l4 + it.l4len, gsoSize: 0, csumStart: it.l4, csumOffset: tcp ? 16 : 6 });
    return { vnet, packet: p, segments: 1 };
  }
  const out = new Uint8Array(it.total);
  let at = 0;
  for (const part of it.parts) {
    out.set(part, at);
    at += part.length;
  }
  const tcp = it.kind === 'tcp';
  if (family(out) === 4) {
    put16(out, 2, out.length);
    fillIp4Checksum(out);
  } else {
    put16(out, 4, out.length - 40);
  }
  if (tcp && it.psh) out[it.l4 + 13]! |= 0x08;
  if (!tcp) put16(out, it.l4 + 4, out.length - it.l4);
  put16(out, it.l4 + (tcp ? 16 : 6), fold(pseudoSum(out, tcp ? 6 : 17, out.length - it.l4)));
  const gsoType = tcp ? (family(out) === 4 ? GSO_TCPV4 : GSO_TCPV6) : GSO_UDP_L4;
  const vnet = encodeVnet({
    flags: VNET_F_NEEDS_CSUM,
    gsoType,
    hdrLen: it.l4 + it.l4len,
    gsoSize: it.gsoSize,
    csumStart: it.l4,
    csumOffset: tcp ? 16 : 6,
  });
  return { vnet, packet: out, segments: it.parts.length };
}
