/** IPv4 arithmetic on unsigned 32-bit integers: what subnet allocation needs. */
import { parseAddress, parsePrefix } from './ip.js';
import { TulleError } from './errors.js';

/**
 * A dotted quad as node's isIPv4 accepts it (four decimal octets 0..255, no leading zeros) as an
 * unsigned integer, else -1: the allocation-free path for the tens of thousands of lease names and
 * PublicIPs a listing at cluster scale brings (parseAddress was a tenth of a join storm's CPU).
 */
function quad(text: string): number {
  let n = 0;
  let octet = 0;
  let digits = 0;
  let dots = 0;
  for (let i = 0; i < text.length; i++) {
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

export function ip4ToInt(text: string): number {
  const q = quad(text);
  if (q >= 0) return q;
  const a = parseAddress(text);
  if (a.family !== 4) throw new TulleError('ERR_TULLE_ADDRESS', `'${text}' is not an IPv4 address`);
  return ((a.bytes[0]! << 24) | (a.bytes[1]! << 16) | (a.bytes[2]! << 8) | a.bytes[3]!) >>> 0;
}

export function intToIp4(n: number): string {
  return `${n >>> 24}.${(n >>> 16) & 0xff}.${(n >>> 8) & 0xff}.${n & 0xff}`;
}

export interface Net4 {
  /** network address as an unsigned integer */
  base: number;
  len: number;
}

export function parseNet4(text: string): Net4 {
  const slash = text.indexOf('/');
  const lenText = text.slice(slash + 1);
  const base = slash > 0 ? quad(text.slice(0, slash)) : -1;
  if (base >= 0 && /^\d{1,2}$/.test(lenText) && Number(lenText) <= 32) return { base, len: Number(lenText) };
  const p = parsePrefix(text);
  if (p.family !== 4) throw new TulleError('ERR_TULLE_PREFIX', `'${text}' is not an IPv4 prefix`);
  return { base: ip4ToInt(text.slice(0, text.indexOf('/'))), len: p.len };
}

export function net4Size(len: number): number {
  return 2 ** (32 - len);
}

export function net4Mask(len: number): number {
  return len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0;
}

export function formatNet4(n: Net4): string {
  return `${intToIp4(n.base)}/${n.len}`;
}

export function net4Contains(n: Net4, addr: number): boolean {
  return ((addr & net4Mask(n.len)) >>> 0) === n.base;
}

/** True when the address has no host bits set for a prefix of this length. */
export function isAligned(addr: number, len: number): boolean {
  return ((addr & net4Mask(len)) >>> 0) === addr;
}
