/** Hand-made IP packets for hostile-input tests. */
import { parseAddress } from '../../src/util/ip.js';

function checksum(b: Uint8Array, seed = 0): number {
  let s = seed;
  for (let i = 0; i + 1 < b.length; i += 2) s += (b[i]! << 8) | b[i + 1]!;
  if (b.length & 1) s += b[b.length - 1]! << 8;
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return ~s & 0xffff;
}

/** A well-formed IPv4/UDP packet. */
export function ipv4Udp(src: string, dst: string, payload: Uint8Array, dport = 9999): Uint8Array {
  const total = 20 + 8 + payload.length;
  const p = new Uint8Array(total);
  const v = new DataView(p.buffer);
  p[0] = 0x45;
  v.setUint16(2, total);
  p[8] = 64;
  p[9] = 17;
  p.set(parseAddress(src).bytes, 12);
  p.set(parseAddress(dst).bytes, 16);
  v.setUint16(10, checksum(p.subarray(0, 20)));
  v.setUint16(20, 40000);
  v.setUint16(22, dport);
  v.setUint16(24, 8 + payload.length);
  p.set(payload, 28);
  return p;
}

export const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

export function contains(hay: Uint8Array, needle: Uint8Array): boolean {
  return Buffer.from(hay).includes(Buffer.from(needle));
}
export const inetChecksum = checksum;

/** A well-formed IPv6/UDP packet (UDP checksum over the IPv6 pseudo-header, as IPv6 requires). */
export function ipv6Udp(src: string, dst: string, payload: Uint8Array, dport = 9999): Uint8Array {
  const udpLen = 8 + payload.length;
  const p = new Uint8Array(40 + udpLen);
  const v = new DataView(p.buffer);
  p[0] = 0x60;
  v.setUint16(4, udpLen);
  p[6] = 17;
  p[7] = 64;
  p.set(parseAddress(src).bytes, 8);
  p.set(parseAddress(dst).bytes, 24);
  v.setUint16(40, 40000);
  v.setUint16(42, dport);
  v.setUint16(44, udpLen);
  p.set(payload, 48);
  // pseudo-header: addresses, upper-layer length, next header
  let seed = 0;
  for (let i = 8; i < 40; i += 2) seed += (p[i]! << 8) | p[i + 1]!;
  seed += udpLen + 17;
  const c = checksum(p.subarray(40), seed);
  v.setUint16(46, c === 0 ? 0xffff : c);
  return p;
}
