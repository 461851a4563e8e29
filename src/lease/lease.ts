/**
 * One subnet lease in flannel's etcd schema (design.md §3):
 *
 *   key   <prefix>/subnets/10.244.3.0-24
 *   value {"PublicIP":"198.18.0.10","PublicIPv6":null,"BackendType":"udp"}
 *         (+ "BackendData": {...} for backends that need it; plain mode has none)
 *
 * Values are written by other nodes and by people: decoding never throws, it says what is wrong.
 */
import { isIPv4, isIPv6 } from 'node:net';
import { formatNet4, intToIp4, ip4ToInt, isAligned } from '../util/ip4.js';

export interface LeaseAttrs {
  PublicIP: string;
  PublicIPv6: string | null;
  BackendType: string;
  BackendData?: unknown;
}

export interface Lease {
  /** e.g. 10.244.3.0/24 */
  readonly subnet: string;
  readonly attrs: Readonly<LeaseAttrs>;
  /** etcd revision that last wrote this lease (0 in fakes that do not care) */
  readonly modRevision: number;
}

/** 10.244.3.0/24 → 10.244.3.0-24 (the last path element of the key). */
export function subnetKeyName(subnet: string): string {
  return subnet.replace('/', '-');
}

const KEY_RE = /^(\d{1,3}(?:\.\d{1,3}){3})-(\d{1,2})(?:&([0-9a-fA-F:]+)-(\d{1,3}))?$/;

/** 10.244.3.0-24 → 10.244.3.0/24, or undefined when the name is not a lease key. */
export function parseSubnetKeyName(name: string): string | undefined {
  const m = KEY_RE.exec(name);
  if (!m || !isIPv4(m[1]!)) return undefined;
  const len = Number(m[2]);
  if (len > 32) return undefined;
  const base = ip4ToInt(m[1]!);
  if (!isAligned(base, len)) return undefined;
  return formatNet4({ base, len });
}

export function encodeLeaseValue(attrs: LeaseAttrs): string {
  const out: Record<string, unknown> = { PublicIP: attrs.PublicIP, PublicIPv6: attrs.PublicIPv6, BackendType: attrs.BackendType };
  if (attrs.BackendData !== undefined) out.BackendData = attrs.BackendData;
  return JSON.stringify(out);
}

export type Decoded = { ok: true; attrs: LeaseAttrs } | { ok: false; problem: string };

export function decodeLeaseValue(text: string): Decoded {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return { ok: false, problem: 'value is not JSON' };
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return { ok: false, problem: 'value is not a JSON object' };
  const o = v as Record<string, unknown>;
  if (typeof o.PublicIP !== 'string' || !isIPv4(o.PublicIP)) return { ok: false, problem: 'PublicIP is not an IPv4 address' };
  if (o.PublicIPv6 !== undefined && o.PublicIPv6 !== null && (typeof o.PublicIPv6 !== 'string' || !isIPv6(o.PublicIPv6))) {
    return { ok: false, problem: 'PublicIPv6 is not an IPv6 address' };
  }
  // flannel omits BackendType when empty; an empty type is its default, udp
  const type = o.BackendType === undefined || o.BackendType === '' ? 'udp' : o.BackendType;
  if (typeof type !== 'string') return { ok: false, problem: 'BackendType is not a string' };
  const attrs: LeaseAttrs = { PublicIP: intToIp4(ip4ToInt(o.PublicIP)), PublicIPv6: (o.PublicIPv6 as string | null | undefined) ?? null, BackendType: type };
  if (o.BackendData !== undefined && o.BackendData !== null) attrs.BackendData = o.BackendData;
  return { ok: true, attrs };
}

/** The first usable address of a subnet with its length, as flannel writes FLANNEL_SUBNET. */
export function firstAddress(subnet: string): string {
  const [addr, len] = subnet.split('/');
  return `${intToIp4(ip4ToInt(addr!) + 1)}/${len}`;
}

export function sameAttrs(a: LeaseAttrs, b: LeaseAttrs): boolean {
  return encodeLeaseValue(a) === encodeLeaseValue(b);
}
