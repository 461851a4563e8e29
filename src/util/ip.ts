/** Addresses and prefixes as bytes: the one place text addresses are parsed. */
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

export function parseAddress(text: string): Address {
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
  if (a.family === 4) return Array.from(a.bytes).join('.');
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
