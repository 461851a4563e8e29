/**
 * One subnet lease in flannel's etcd schema (design.md §3; flannel's pkg/subnet MakeSubnetKey,
 * ParseSubnetKey and pkg/lease LeaseAttrs):
 *
 *   key   <prefix>/subnets/10.244.3.0-24                              IPv4 only
 *         <prefix>/subnets/10.244.3.0-24&fd00:10:244:3::-64           dual stack
 *         <prefix>/subnets/0.0.0.0-0&fd00:10:244:3::-64               IPv6 only (no IPv4 subnet)
 *   value {"PublicIP":"198.18.0.10","PublicIPv6":null}                   udp (flanneld's udp backend
 *                                                                     sets no BackendType: omitempty)
 *         {"PublicIP":"198.18.0.10","PublicIPv6":null,"BackendType":"wireguard"}
 *         (+ "BackendData": {...} for the IPv4 tunnel, "BackendV6Data": {...} for the IPv6 one,
 *         in that order, for backends that need them; plain mode has none; an IPv6-only lease
 *         has "PublicIP":"0.0.0.0", as flanneld writes it)
 *
 * Values are written by other nodes and by people: decoding never throws, it says what is wrong.
 */
import { isIPv4, isIPv6 } from 'node:net';
import { goFields } from '../config/go-json.js';
import { firstHost, formatAddress, formatNet, isAligned, maskNet, parseAddress, parseNet, quad, quadBytes, type Family } from '../util/ip.js';

/** flanneld's PublicIP of a lease without an IPv4 underlay address (IPv6 only) */
export const NO_PUBLIC_IP = '0.0.0.0';

export interface LeaseAttrs {
  PublicIP: string;
  PublicIPv6: string | null;
  BackendType: string;
  BackendData?: unknown;
  BackendV6Data?: unknown;
}

/** The subnets a lease holds: its key. */
export interface LeaseSubnets {
  /**
   * The lease's identity in tables, logs and status: its IPv4 subnet (e.g. 10.244.3.0/24), or
   * its IPv6 subnet when it has no IPv4 one (IPv6 only).
   */
  readonly subnet: string;
  /** its IPv6 subnet (dual stack and IPv6 only), e.g. fd00:10:244:3::/64 */
  readonly ipv6Subnet?: string | undefined;
}

export interface Lease extends LeaseSubnets {
  readonly attrs: Readonly<LeaseAttrs>;
  /** etcd revision that last wrote this lease (0 in fakes that do not care) */
  readonly modRevision: number;
}

export function familyOf(subnet: string): Family {
  return subnet.includes(':') ? 6 : 4;
}

/** The lease's IPv4 subnet, or undefined for an IPv6-only lease. */
export function ipv4SubnetOf(l: LeaseSubnets): string | undefined {
  return familyOf(l.subnet) === 4 ? l.subnet : undefined;
}

/** Every subnet of the lease, IPv4 first. */
export function subnetsOf(l: LeaseSubnets): string[] {
  const v4 = ipv4SubnetOf(l);
  return [...(v4 ? [v4] : []), ...(l.ipv6Subnet ? [l.ipv6Subnet] : [])];
}

/** A lease's key from its subnets (flannel's MakeSubnetKey). */
export function leaseSubnets(ipv4: string | undefined, ipv6: string | undefined): LeaseSubnets {
  if (ipv4 === undefined && ipv6 === undefined) throw new Error('a lease needs an IPv4 or an IPv6 subnet');
  return ipv4 === undefined ? { subnet: ipv6!, ipv6Subnet: ipv6 } : { subnet: ipv4, ipv6Subnet: ipv6 };
}

/** 10.244.3.0/24 (& fd00:10:244:3::/64) → 10.244.3.0-24(&fd00:10:244:3::-64): the last path element of the key. */
export function leaseKeyName(l: LeaseSubnets): string {
  const v4 = ipv4SubnetOf(l) ?? `${NO_PUBLIC_IP}/0`;
  const name = v4.replace('/', '-');
  return l.ipv6Subnet ? `${name}&${l.ipv6Subnet.replace('/', '-')}` : name;
}

/** flanneld's ParseSubnetKey: lower-case IPv6 hex, an IPv4 length of 5 bits, an IPv6 one of 7 */
const KEY_RE = /^(\d{1,3}(?:\.\d{1,3}){3})-(\d{1,2})(?:&([a-f\d:]+)-(\d{1,3}))?$/;

/** A key name → the lease's subnets, or undefined when the name is not a lease key. */
export function parseLeaseKeyName(name: string): LeaseSubnets | undefined {
  return ipv4KeyName(name) ?? parseKeyNameGeneric(name);
}

/**
 * The common key, IPv4 only and written as flanneld writes it (10.244.3.0-24: a canonical dotted
 * quad, an aligned base, a length 1..31 without a leading zero), with no regex and no allocation
 * but the result; undefined for anything else, which the generic parser then reads. A listing at
 * cluster scale is tens of thousands of these.
 */
function ipv4KeyName(name: string): LeaseSubnets | undefined {
  const dash = name.indexOf('-');
  const end = name.length;
  if (dash < 7 || end - dash < 2 || end - dash > 3) return undefined;
  const code = keyCode(quad(name, 0, dash), name.charCodeAt(dash + 1), end - dash === 3 ? name.charCodeAt(dash + 2) : -1);
  if (code < 0) return undefined;
  return { subnet: `${name.slice(0, dash)}/${code % 64}`, ipv6Subnet: undefined };
}

/**
 * A key's base (quad(), -1 if none) and the character codes of its length (c2 -1: one digit) as
 * `base * 64 + len`, when the length has no leading zero, is 1..31 and the base is aligned to it;
 * else -1. What ipv4KeyName and ipv4KeyCode both check after the dotted quad.
 */
function keyCode(base: number, c1: number, c2: number): number {
  const d1 = c1 - 48;
  const d2 = c2 < 0 ? -1 : c2 - 48;
  if (base < 0 || d1 < 1 || d1 > 9 || (c2 >= 0 && (d2 < 0 || d2 > 9))) return -1;
  const len = d2 < 0 ? d1 : d1 * 10 + d2;
  if (len > 31 || base % 2 ** (32 - len) !== 0) return -1;
  return base * 64 + len;
}

/**
 * ipv4KeyName over the name's bytes (a listing page as etcd sent it): the same names, given as
 * `base * 64 + len` (exact in a double: below 2^38), or -1 for anything else (then the name is
 * made a string and read by parseLeaseKeyName). No string, no object: the acquisition's path.
 */
export function ipv4KeyCode(buf: Uint8Array, from: number, end: number): number {
  // (what follows the dash is one or two digits, so the dash is one of the last three bytes)
  const dash = buf[end - 2] === 45 ? end - 2 : buf[end - 3] === 45 ? end - 3 : -1;
  if (dash < from + 7) return -1;
  return keyCode(quadBytes(buf, from, dash), buf[dash + 1]!, end - dash === 3 ? buf[dash + 2]! : -1);
}

/** The IPv4 subnet of an ipv4KeyCode, as formatted (10.244.3.0/24). */
export function ipv4KeySubnet(code: number): string {
  const base = Math.floor(code / 64);
  return `${base >>> 24}.${(base >>> 16) & 255}.${(base >>> 8) & 255}.${base & 255}/${code % 64}`;
}

function parseKeyNameGeneric(name: string): LeaseSubnets | undefined {
  const m = KEY_RE.exec(name);
  if (!m || !isIPv4(m[1]!)) return undefined;
  const v4 = alignedNet(m[1]!, Number(m[2]), 4, 31);
  if (v4 === undefined) return undefined;
  let v6: string | undefined;
  if (m[3] !== undefined) {
    if (!isIPv6(m[3])) return undefined;
    v6 = alignedNet(m[3], Number(m[4]), 6, 127);
    if (v6 === undefined || v6 === '::/0') return undefined;
  }
  const noV4 = v4 === `${NO_PUBLIC_IP}/0`;
  if (noV4 && v6 === undefined) return undefined; // 0.0.0.0/0 alone is no lease
  return leaseSubnets(noV4 ? undefined : v4, v6);
}

function alignedNet(addr: string, len: number, family: Family, maxLen: number): string | undefined {
  if (len > maxLen) return undefined;
  const n = { ...parseNet(`${addr}/${len}`, family) };
  if (!isAligned(family, n.base, len)) return undefined;
  return formatNet(maskNet(n));
}

export function encodeLeaseValue(attrs: LeaseAttrs): string {
  const out: Record<string, unknown> = { PublicIP: attrs.PublicIP, PublicIPv6: attrs.PublicIPv6 };
  // flanneld's udp backend leaves BackendType empty and Go's omitempty drops it; reading maps the
  // missing field back to udp (decodeLeaseValue), so the value is flanneld's, byte for byte
  if (attrs.BackendType !== 'udp') out.BackendType = attrs.BackendType;
  if (attrs.BackendData !== undefined) out.BackendData = attrs.BackendData;
  if (attrs.BackendV6Data !== undefined) out.BackendV6Data = attrs.BackendV6Data;
  return JSON.stringify(out);
}

export type Decoded = { ok: true; attrs: LeaseAttrs } | { ok: false; problem: string };

/** flanneld's LeaseAttrs fields, which Go's decoder also matches without regard to case */
const LEASE_FIELDS = ['PublicIP', 'PublicIPv6', 'BackendType', 'BackendData', 'BackendV6Data'] as const;

export function decodeLeaseValue(text: string): Decoded {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return { ok: false, problem: 'value is not JSON' };
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return { ok: false, problem: 'value is not a JSON object' };
  const o = goFields(v as Record<string, unknown>, LEASE_FIELDS);
  // (a canonical dotted quad, what flanneld writes, is its own formatted form: no parse needed)
  const canonical = typeof o.PublicIP === 'string' && quad(o.PublicIP) >= 0;
  if (typeof o.PublicIP !== 'string' || !(canonical || isIPv4(o.PublicIP))) return { ok: false, problem: 'PublicIP is not an IPv4 address' };
  if (o.PublicIPv6 !== undefined && o.PublicIPv6 !== null && (typeof o.PublicIPv6 !== 'string' || !isIPv6(o.PublicIPv6))) {
    return { ok: false, problem: 'PublicIPv6 is not an IPv6 address' };
  }
  // flannel omits BackendType when empty; an empty type is its default, udp
  const type = o.BackendType === undefined || o.BackendType === '' ? 'udp' : o.BackendType;
  if (typeof type !== 'string') return { ok: false, problem: 'BackendType is not a string' };
  const publicIPv6 = typeof o.PublicIPv6 === 'string' ? formatAddress(parseAddress(o.PublicIPv6)) : null;
  const attrs: LeaseAttrs = { PublicIP: canonical ? o.PublicIP : formatAddress(parseAddress(o.PublicIP)), PublicIPv6: publicIPv6, BackendType: type };
  if (o.BackendData !== undefined && o.BackendData !== null) attrs.BackendData = o.BackendData;
  if (o.BackendV6Data !== undefined && o.BackendV6Data !== null) attrs.BackendV6Data = o.BackendV6Data;
  return { ok: true, attrs };
}

/** The first usable address of a subnet with its length, as flannel writes FLANNEL_SUBNET and FLANNEL_IPV6_SUBNET. */
export function firstAddress(subnet: string): string {
  return firstHost(parseNet(subnet));
}

export function sameAttrs(a: LeaseAttrs, b: LeaseAttrs): boolean {
  return encodeLeaseValue(a) === encodeLeaseValue(b);
}
