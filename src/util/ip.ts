/**
 * IP addresses and prefixes, both families: the one place text addresses are parsed and the one
 * module for address arithmetic. Bytes (Address, Prefix) for the data plane's commands;
 * integers (Net) for subnets, lease keys and config checks.
 */
import { isIPv4, isIPv6 } from 'node:net';
import { TulleError } from './errors.js';

export type Family = 4 | 6;

export interface Address {
  family: Family;
  bytes: Uint8Array; // 4 or 16
}

export interface Prefix extends Address {
  len: number;
}

/**
 * text[from, to) as an unsigned integer when it is a dotted quad as node's isIPv4 accepts it (four
 * decimal octets 0..255, no leading zeros), else -1. No allocation: the path for the tens of
 * thousands of lease names a listing at cluster scale brings (parseAddress and parsePrefix were a
 * sixth of a join storm's CPU).
 */
export function quad(text: string, from = 0, to = text.length): number {
  let n = 0;
  let octet = 0;
  let digits = 0;
  let dots = 0;
  for (let i = from; i < to; i++) {
    const c = text.charCodeAt(i);
    if (c === 46) {
      if (!digits || dots === 3) return -1;
      n = n * 256 + octet;
      octet = digits = 0;
      dots++;
      continue;
    }
    if (c < 48 || c > 57 || (digits && octet === 0)) return -1;
    octet = octet * 10 + (c - 48);
    if (++digits > 3 || octet > 255) return -1;
  }
  return digits && dots === 3 ? n * 256 + octet : -1;
}

/** quad() over bytes (ASCII): buf[from, to) as an unsigned integer, or -1; for names read off the wire. */
export function quadBytes(buf: Uint8Array, from: number, to: number): number {
  let n = 0;
  let octet = 0;
  let digits = 0;
  let dots = 0;
  for (let i = from; i < to; i++) {
    const c = buf[i]!;
    if (c === 46) {
      if (!digits || dots === 3) return -1;
      n = n * 256 + octet;
      octet = digits = 0;
      dots++;
      continue;
    }
    if (c < 48 || c > 57 || (digits && octet === 0)) return -1;
    octet = octet * 10 + (c - 48);
    if (++digits > 3 || octet > 255) return -1;
  }
  return digits && dots === 3 ? n * 256 + octet : -1;
}

export function parseAddress(text: string): Address {
  const q = quad(text);
  if (q >= 0) return { family: 4, bytes: Uint8Array.of(q >>> 24, (q >>> 16) & 0xff, (q >>> 8) & 0xff, q & 0xff) };
  if (isIPv4(text)) return { family: 4, bytes: Uint8Array.from(text.split('.').map(Number)) };
  if (isIPv6(text)) return { family: 6, bytes: parseV6(text) };
  throw new TulleError('ERR_TULLE_ADDRESS', `'${text}' is not an IPv4 or IPv6 address`);
}

function parseV6(text: string): Uint8Array {
  let t = text;
  const out = new Uint8Array(16);
  // a trailing dotted quad (::ffff:1.2.3.4)
  const dot = t.lastIndexOf('.');
  let tail: number[] = [];
  if (dot >= 0) {
    const colon = t.lastIndexOf(':');
    tail = t.slice(colon + 1).split('.').map(Number);
    t = t.slice(0, colon + 1) + '0:0';
  }
  const [head, rest] = t.includes('::') ? t.split('::') : [t, undefined];
  const hs = head ? head.split(':') : [];
  const rs = rest === undefined ? [] : rest ? rest.split(':') : [];
  const groups = rest === undefined ? hs : [...hs, ...Array(8 - hs.length - rs.length).fill('0'), ...rs];
  groups.forEach((g, i) => {
    const v = parseInt(g, 16);
    out[i * 2] = v >> 8;
    out[i * 2 + 1] = v & 0xff;
  });
  if (tail.length === 4) out.set(tail, 12);
  return out;
}

export function parsePrefix(text: string): Prefix {
  const slash = text.indexOf('/');
  if (slash < 0) throw new TulleError('ERR_TULLE_PREFIX', `'${text}' is not a prefix (address/length)`);
  const addr = parseAddress(text.slice(0, slash));
  const lenText = text.slice(slash + 1);
  const len = Number(lenText);
  const max = addr.family === 4 ? 32 : 128;
  if (!/^\d+$/.test(lenText) || len > max) {
    throw new TulleError('ERR_TULLE_PREFIX', `'${text}' has a prefix length outside 0..${max}`);
  }
  return { ...addr, len };
}

export function formatAddress(a: Address): string {
  if (a.family === 4) return `${a.bytes[0]}.${a.bytes[1]}.${a.bytes[2]}.${a.bytes[3]}`;
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((a.bytes[i]! << 8) | a.bytes[i + 1]!).toString(16));
  // compress the longest run of zero groups (RFC 5952)
  let best = -1, bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== '0') { i++; continue; }
    let j = i;
    while (j < 8 && groups[j] === '0') j++;
    if (j - i > bestLen && j - i > 1) { best = i; bestLen = j - i; }
    i = j;
  }
  if (best < 0) return groups.join(':');
  return `${groups.slice(0, best).join(':')}::${groups.slice(best + bestLen).join(':')}`;
}

export function formatPrefix(p: Prefix): string {
  return `${formatAddress(p)}/${p.len}`;
}

/** The prefix with every host bit cleared. */
export function maskPrefix(p: Prefix): Prefix {
  const bytes = p.bytes.slice();
  for (let i = 0; i < bytes.length; i++) {
    const bits = p.len - i * 8;
    if (bits >= 8) continue;
    bytes[i]! &= bits <= 0 ? 0 : (0xff << (8 - bits)) & 0xff;
  }
  return { family: p.family, bytes, len: p.len };
}

export function prefixContains(p: Prefix, a: Address): boolean {
  if (p.family !== a.family) return false;
  const m = maskPrefix({ ...a, len: p.len });
  const n = maskPrefix(p);
  return m.bytes.every((b, i) => b === n.bytes[i]);
}

/*
 * Integer arithmetic on prefixes, both families: what subnet allocation, lease keys and the
 * config checks need. An address is an unsigned integer (bigint: 32 bits for IPv4, 128 for IPv6).
 */

/** A prefix as an integer: `base` is its address (host bits as written; maskNet clears them). */
export interface Net {
  family: Family;
  base: bigint;
  len: number;
}

export function familyBits(family: Family): number {
  return family === 4 ? 32 : 128;
}

export function addressValue(a: Address): bigint {
  let v = 0n;
  for (const b of a.bytes) v = (v << 8n) | BigInt(b);
  return v;
}

export function valueAddress(family: Family, value: bigint): Address {
  const bytes = new Uint8Array(family === 4 ? 4 : 16);
  let v = value;
  for (let i = bytes.length - 1; i >= 0; i--) {
    bytes[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return { family, bytes };
}

function familyName(family: Family): string {
  return family === 4 ? 'IPv4' : 'IPv6';
}

/** An address as an integer; with `family`, an address of the other family is an error. */
export function parseValue(text: string, family?: Family): { family: Family; value: bigint } {
  const a = parseAddress(text);
  if (family !== undefined && a.family !== family) throw new TulleError('ERR_TULLE_ADDRESS', `'${text}' is not an ${familyName(family)} address`);
  return { family: a.family, value: addressValue(a) };
}

export function formatValue(family: Family, value: bigint): string {
  return formatAddress(valueAddress(family, value));
}

/** "10.244.0.0/16" → Net; with `family`, a prefix of the other family is an error. */
export function parseNet(text: string, family?: Family): Net {
  const p = parsePrefix(text);
  if (family !== undefined && p.family !== family) throw new TulleError('ERR_TULLE_PREFIX', `'${text}' is not an ${familyName(family)} prefix`);
  return { family: p.family, base: addressValue(p), len: p.len };
}

export function formatNet(n: Net): string {
  return `${formatValue(n.family, n.base)}/${n.len}`;
}

/** Number of addresses in a prefix of this length. */
export function netSize(family: Family, len: number): bigint {
  return 1n << BigInt(familyBits(family) - len);
}

export function netMask(family: Family, len: number): bigint {
  const bits = BigInt(familyBits(family));
  return ((1n << bits) - 1n) ^ ((1n << (bits - BigInt(len))) - 1n);
}

/** The prefix with every host bit cleared. */
export function maskNet(n: Net): Net {
  return { family: n.family, base: n.base & netMask(n.family, n.len), len: n.len };
}

export function netContains(n: Net, value: bigint): boolean {
  return (value & netMask(n.family, n.len)) === (n.base & netMask(n.family, n.len));
}

/** True when the address has no host bits set for a prefix of this length. */
export function isAligned(family: Family, value: bigint, len: number): boolean {
  return (value & netMask(family, len)) === value;
}

/** True when the two prefixes (same family) share an address. */
export function netsOverlap(a: Net, b: Net): boolean {
  if (a.family !== b.family) return false;
  const len = Math.min(a.len, b.len);
  const m = netMask(a.family, len);
  return (a.base & m) === (b.base & m);
}

/** The first address after the network address, with the prefix length: 10.244.3.0/24 → 10.244.3.1/24. */
export function firstHost(n: Net): string {
  return `${formatValue(n.family, n.base + 1n)}/${n.len}`;
}
