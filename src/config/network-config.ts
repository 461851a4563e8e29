/**
 * The network config at `<prefix>/config`: flannel's JSON fields and defaults (design.md §3),
 * parsed, validated and frozen in this one place. Every error names the field and the problem.
 *
 *   {"Network": "10.244.0.0/16", "SubnetLen": 24, "Backend": {"Type": "udp", "Port": 8285}}
 */
import { ConfigError } from '../util/errors.js';
import { formatNet4, intToIp4, ip4ToInt, isAligned, net4Contains, net4Size, parseNet4 } from '../util/ip4.js';
import { parsePrefix } from '../util/ip.js';

export const UDP_DEFAULT_PORT = 8285;
export const WIREGUARD_DEFAULT_PORT = 51820;

export type BackendConfig =
  | Readonly<{ type: 'udp'; port: number }>
  | Readonly<{
      type: 'wireguard';
      listenPort: number;
      /** base64 of a 32-byte pre-shared key, or undefined */
      psk: string | undefined;
      /** explicit TUN MTU, or undefined for underlay MTU − overhead */
      mtu: number | undefined;
      persistentKeepaliveSeconds: number;
    }>;

export type BackendType = BackendConfig['type'];

export interface NetworkConfig {
  /** the whole overlay, e.g. 10.244.0.0/16 */
  readonly network: string;
  readonly subnetLen: number;
  /** first and last subnet (network addresses) that may be leased */
  readonly subnetMin: string;
  readonly subnetMax: string;
  readonly backend: BackendConfig;
  /** flanneld's EnableNFTables: masquerade/forward rules in nftables instead of iptables */
  readonly enableNFTables: boolean;
}

const TOP_FIELDS = new Set([
  'Network', 'SubnetLen', 'SubnetMin', 'SubnetMax', 'EnableIPv4', 'EnableIPv6', 'EnableNFTables',
  'IPv6Network', 'IPv6SubnetLen', 'IPv6SubnetMin', 'IPv6SubnetMax', 'Backend',
]);
const BACKEND_FIELDS: Record<BackendType, Set<string>> = {
  udp: new Set(['Type', 'Port']),
  wireguard: new Set(['Type', 'ListenPort', 'ListenPortV6', 'PSK', 'MTU', 'PersistentKeepaliveInterval', 'Mode']),
};

type Json = Record<string, unknown>;

function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function int(field: string, v: unknown, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw new ConfigError(field, `must be an integer in ${min}..${max}, got ${JSON.stringify(v)}`);
  }
  return v;
}

function bool(field: string, v: unknown): boolean {
  if (typeof v !== 'boolean') throw new ConfigError(field, `must be true or false, got ${JSON.stringify(v)}`);
  return v;
}

function str(field: string, v: unknown): string {
  if (typeof v !== 'string') throw new ConfigError(field, `must be a string, got ${JSON.stringify(v)}`);
  return v;
}

/** Parses the JSON text stored at `<prefix>/config`. */
export function parseNetworkConfig(text: string): NetworkConfig {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (cause) {
    throw new ConfigError('(document)', `is not valid JSON: ${(cause as Error).message}`, { cause });
  }
  return validateNetworkConfig(raw);
}

export function validateNetworkConfig(raw: unknown): NetworkConfig {
  if (!isObject(raw)) throw new ConfigError('(document)', 'must be a JSON object');
  for (const k of Object.keys(raw)) if (!TOP_FIELDS.has(k)) throw new ConfigError(k, 'unknown field');

  if (raw.EnableIPv4 !== undefined && !bool('EnableIPv4', raw.EnableIPv4)) {
    throw new ConfigError('EnableIPv4', 'tulle needs an IPv4 overlay; false is not supported');
  }
  const enableNFTables = raw.EnableNFTables === undefined ? false : bool('EnableNFTables', raw.EnableNFTables);
  validateIPv6(raw);

  if (raw.Network === undefined) throw new ConfigError('Network', 'is required (e.g. "10.244.0.0/16")');
  let net;
  try {
    net = parseNet4(str('Network', raw.Network));
  } catch (cause) {
    if (cause instanceof ConfigError) throw cause;
    throw new ConfigError('Network', `${JSON.stringify(raw.Network)} is not an IPv4 prefix`, { cause });
  }
  if (!isAligned(net.base, net.len)) throw new ConfigError('Network', `${raw.Network} has host bits set`);

  let subnetLen: number;
  if (raw.SubnetLen !== undefined && raw.SubnetLen !== 0) {
    subnetLen = int('SubnetLen', raw.SubnetLen, 1, 30);
    if (subnetLen < net.len + 2) {
      throw new ConfigError('SubnetLen', `/${subnetLen} leaves fewer than four subnets in ${raw.Network}; use at least /${net.len + 2}`);
    }
  } else {
    if (net.len > 28) throw new ConfigError('Network', `${raw.Network} is too small; the smallest useful network is a /28`);
    subnetLen = net.len <= 22 ? 24 : net.len + 2;
  }
  const size = net4Size(subnetLen);
  const subnetMin = subnetBound('SubnetMin', raw.SubnetMin, net, subnetLen, net.base + size);
  const subnetMax = subnetBound('SubnetMax', raw.SubnetMax, net, subnetLen, net.base + net4Size(net.len) - size);
  if (subnetMin > subnetMax) throw new ConfigError('SubnetMin', `${intToIp4(subnetMin)} is above SubnetMax ${intToIp4(subnetMax)}`);

  return Object.freeze({
    network: formatNet4(net),
    subnetLen,
    subnetMin: intToIp4(subnetMin),
    subnetMax: intToIp4(subnetMax),
    backend: parseBackend(raw.Backend),
    enableNFTables,
  });
}

function subnetBound(field: string, v: unknown, net: { base: number; len: number }, subnetLen: number, dflt: number): number {
  if (v === undefined || v === '' || v === '0.0.0.0') return dflt;
  let n: number;
  try {
    n = ip4ToInt(str(field, v));
  } catch (cause) {
    if (cause instanceof ConfigError) throw cause;
    throw new ConfigError(field, `${JSON.stringify(v)} is not an IPv4 address`, { cause });
  }
  if (!net4Contains(net, n)) throw new ConfigError(field, `${v} is not inside Network ${formatNet4(net)}`);
  if (!isAligned(n, subnetLen)) throw new ConfigError(field, `${v} is not on a /${subnetLen} (SubnetLen) boundary`);
  return n;
}

function validateIPv6(raw: Json): void {
  for (const f of ['IPv6Network', 'IPv6SubnetMin', 'IPv6SubnetMax'] as const) {
    if (raw[f] === undefined) continue;
    const text = str(f, raw[f]);
    try {
      const p = f === 'IPv6Network' ? parsePrefix(text) : parsePrefix(`${text}/128`);
      if (p.family !== 6) throw new Error('not IPv6');
    } catch (cause) {
      throw new ConfigError(f, `${JSON.stringify(text)} is not an IPv6 ${f === 'IPv6Network' ? 'prefix' : 'address'}`, { cause });
    }
  }
  if (raw.IPv6SubnetLen !== undefined) int('IPv6SubnetLen', raw.IPv6SubnetLen, 0, 126);
  if (raw.EnableIPv6 !== undefined && bool('EnableIPv6', raw.EnableIPv6)) {
    throw new ConfigError('EnableIPv6', 'IPv6 overlays are not supported by tulle yet; remove it or set it to false');
  }
}

function parseBackend(v: unknown): BackendConfig {
  if (v === undefined) return Object.freeze({ type: 'udp', port: UDP_DEFAULT_PORT });
  if (!isObject(v)) throw new ConfigError('Backend', 'must be an object like {"Type": "udp"}');
  const type = v.Type === undefined ? 'udp' : str('Backend.Type', v.Type);
  if (type !== 'udp' && type !== 'wireguard') {
    throw new ConfigError('Backend.Type', `"${type}" is not supported by tulle (supported: "udp", "wireguard")`);
  }
  for (const k of Object.keys(v)) {
    if (!BACKEND_FIELDS[type].has(k)) throw new ConfigError(`Backend.${k}`, `unknown field for Backend.Type "${type}"`);
  }
  if (type === 'udp') {
    return Object.freeze({ type, port: v.Port === undefined ? UDP_DEFAULT_PORT : int('Backend.Port', v.Port, 1, 65535) });
  }
  if (v.ListenPortV6 !== undefined) int('Backend.ListenPortV6', v.ListenPortV6, 1, 65535);
  if (v.Mode !== undefined && !['auto', 'ipv4', 'ipv6', 'separate'].includes(str('Backend.Mode', v.Mode))) {
    throw new ConfigError('Backend.Mode', `must be one of "auto", "ipv4", "ipv6", "separate", got ${JSON.stringify(v.Mode)}`);
  }
  let psk: string | undefined;
  if (v.PSK !== undefined) {
    psk = str('Backend.PSK', v.PSK);
    if (!/^[A-Za-z0-9+/]{43}=$/.test(psk) || Buffer.from(psk, 'base64').length !== 32) {
      throw new ConfigError('Backend.PSK', 'must be the base64 of 32 bytes (as `wg genpsk` prints)');
    }
  }
  return Object.freeze({
    type,
    listenPort: v.ListenPort === undefined ? WIREGUARD_DEFAULT_PORT : int('Backend.ListenPort', v.ListenPort, 1, 65535),
    psk,
    mtu: v.MTU === undefined ? undefined : int('Backend.MTU', v.MTU, 576, 65535),
    persistentKeepaliveSeconds:
      v.PersistentKeepaliveInterval === undefined ? 0 : int('Backend.PersistentKeepaliveInterval', v.PersistentKeepaliveInterval, 0, 65535),
  });
}
