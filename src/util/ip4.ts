/** IPv4 arithmetic on unsigned 32-bit integers: what subnet allocation needs. */
import { parseAddress, parsePrefix } from './ip.js';
import { TulleError } from './errors.js';

export function ip4ToInt(text: string): number {
  const a = parseAddress(text);
  if (a.family !== 4) throw new TulleError('ERR_TULLE_ADDRESS', `'${text}' is not an IPv4 address`);
  return ((a.bytes[0]! << 24) | (a.bytes[1]! << 16) | (a.bytes[2]! << 8) | a.bytes[3]!) >>> 0;
}

export function intToIp4(n: number): string {
  return [n >>> 24, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff].join('.');
}

export interface Net4 {
  /** network address as an unsigned integer */
  base: number;
  len: number;
}

export function parseNet4(text: string): Net4 {
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
