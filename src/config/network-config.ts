/**
 * The network config at `<prefix>/config`: flannel's JSON fields and defaults (design.md §3),
 * read as flanneld reads it (Go's encoding/json, then flannel's CheckNetworkConfig), validated
 * and frozen in this one place. Every error names the field and the problem.
 *
 *   {"Network": "10.244.0.0/16", "SubnetLen": 24, "Backend": {"Type": "udp", "Port": 8285}}
 *
 * As flanneld: field names match without regard to case; unknown fields are ignored (returned
 * as notices for the caller to log once); `Backend.Type` is lower-cased; a `Network` with host
 * bits set is masked; `"PSK": ""` means no PSK; `Backend.MTU` (wireguard) is the underlay MTU.
 */
import { ConfigError } from '../util/errors.js';
import { formatNet4, intToIp4, ip4ToInt, isAligned, net4Contains, net4Mask, net4Size, parseNet4 } from '../util/ip4.js';
import { parsePrefix } from '../util/ip.js';
import { goBool, goInt, goString, goTextValue, isJsonObject, matchFields, type JsonObject } from './go-json.js';

export const UDP_DEFAULT_PORT = 8285;
export const WIREGUARD_DEFAULT_PORT = 51820;
/** the TUN MTU the native data plane needs at least (native/src/addon.c) */
const MIN_TUN_MTU = 576;
/** flanneld's wireguard overhead: IPv6 header 40 + UDP 8 + WireGuard data header 16 + tag 16 */
export const WIREGUARD_MTU_OVERHEAD = 80;

export type BackendConfig =
  | Readonly<{ type: 'udp'; port: number }>
  | Readonly<{
      type: 'wireguard';
      listenPort: number;
      /** base64 of a 32-byte pre-shared key, or undefined */
      psk: string | undefined;
      /** flanneld's Backend.MTU: the underlay MTU (TUN MTU = this − 80); undefined: the interface's */
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

export interface ReadNetworkConfig {
  config: NetworkConfig;
  /** what was read differently from how it was written (ignored fields, masked host bits) */
  notices: string[];
}

/** The fields of flannel's subnet.Config (`BackendType` is `json:"-"`: an unknown field). */
export const CONFIG_FIELDS = [
  'EnableIPv4', 'EnableIPv6', 'EnableNFTables', 'Network', 'IPv6Network', 'SubnetMin', 'SubnetMax',
  'IPv6SubnetMin', 'IPv6SubnetMax', 'SubnetLen', 'IPv6SubnetLen', 'Backend',
] as const;
/** The fields each backend decodes from `Backend` (flannel's udp and wireguard backends). */
export const BACKEND_FIELDS = {
  udp: ['Type', 'Port'],
  wireguard: ['Type', 'ListenPort', 'ListenPortV6', 'MTU', 'PSK', 'PersistentKeepaliveInterval', 'Mode'],
} as const;
/** flanneld's other backends: valid for flanneld, not run by tulle */
const FLANNEL_ONLY_BACKENDS = ['vxlan', 'host-gw', 'ipip', 'ipsec', 'alloc', 'extension', 'tencent-vpc', 'ali-vpc', 'aws-vpc', 'gce'];

/** Parses the JSON text stored at `<prefix>/config`. */
export function parseNetworkConfig(text: string): NetworkConfig {
  return readNetworkConfig(text).config;
}

export function readNetworkConfig(text: string): ReadNetworkConfig {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (cause) {
    throw new ConfigError('(document)', `is not valid JSON: ${(cause as Error).message}`, { cause });
  }
  return validateNetworkConfig(raw);
}

export function validateNetworkConfig(raw: unknown): ReadNetworkConfig {
  if (!isJsonObject(raw)) throw new ConfigError('(document)', 'must be a JSON object');
  const notices: string[] = [];
  const m = matchFields(raw, CONFIG_FIELDS);
  for (const k of m.unknown) notices.push(`unknown field ${JSON.stringify(k)} ignored (as flanneld does)`);
  const v = m.values;

  if (goBool('EnableIPv4', v.EnableIPv4) === false) {
    throw new ConfigError('EnableIPv4', 'tulle needs an IPv4 overlay; false is not supported');
  }
  const enableNFTables = goBool('EnableNFTables', v.EnableNFTables) ?? false;
  validateIPv6(v);

  const net = parseNetwork(v.Network, notices);
  let subnetLen = goInt('SubnetLen', v.SubnetLen, true) ?? 0;
  if (subnetLen > 0) {
    if (subnetLen > 30) throw new ConfigError('SubnetLen', `must be at most 30 (flanneld: less than /31), got ${subnetLen}`);
    if (subnetLen < net.len + 2) {
      throw new ConfigError('SubnetLen', `/${subnetLen} leaves fewer than four subnets in ${formatNet4(net)}; use at least /${net.len + 2}`);
    }
  } else {
    if (net.len > 28) throw new ConfigError('Network', `${formatNet4(net)} is too small; the smallest useful network is a /28`);
    subnetLen = net.len <= 22 ? 24 : net.len + 2;
  }
  const size = net4Size(subnetLen);
  const subnetMin = subnetBound('SubnetMin', v.SubnetMin, net, subnetLen, net.base + size);
  const subnetMax = subnetBound('SubnetMax', v.SubnetMax, net, subnetLen, net.base + net4Size(net.len) - size);
  if (subnetMin > subnetMax) throw new ConfigError('SubnetMin', `${intToIp4(subnetMin)} is above SubnetMax ${intToIp4(subnetMax)}`);

  const config: NetworkConfig = Object.freeze({
    network: formatNet4(net),
    subnetLen,
    subnetMin: intToIp4(subnetMin),
    subnetMax: intToIp4(subnetMax),
    backend: parseBackend(m.values.Backend, 'Backend' in m.values, notices),
    enableNFTables,
  });
  return { config, notices };
}

function parseNetwork(v: unknown, notices: string[]): { base: number; len: number } {
  if (v === undefined) throw new ConfigError('Network', 'is required (e.g. "10.244.0.0/16")');
  const text = goTextValue('Network', v);
  let net;
  try {
    net = parseNet4(text);
  } catch (cause) {
    throw new ConfigError('Network', `${JSON.stringify(text)} is not an IPv4 prefix`, { cause });
  }
  const base = (net.base & net4Mask(net.len)) >>> 0;
  if (base === 0 && net.len === 0) throw new ConfigError('Network', 'must not be 0.0.0.0/0 (flanneld reads it as no Network)');
  if (base !== net.base) notices.push(`Network ${text} has host bits set; using ${formatNet4({ base, len: net.len })} (as flanneld does)`);
  return { base, len: net.len };
}

function subnetBound(field: string, v: unknown, net: { base: number; len: number }, subnetLen: number, dflt: number): number {
  if (v === undefined) return dflt;
  const text = goTextValue(field, v);
  let n: number;
  try {
    n = ip4ToInt(text);
  } catch (cause) {
    throw new ConfigError(field, `${JSON.stringify(text)} is not an IPv4 address`, { cause });
  }
  if (n === 0) return dflt; // flanneld: 0.0.0.0 is "not set"
  if (!net4Contains(net, n)) throw new ConfigError(field, `${text} is not inside Network ${formatNet4(net)}`);
  if (!isAligned(n, subnetLen)) throw new ConfigError(field, `${text} is not on a /${subnetLen} (SubnetLen) boundary`);
  return n;
}

function validateIPv6(v: Partial<Record<(typeof CONFIG_FIELDS)[number], unknown>>): void {
  for (const f of ['IPv6Network', 'IPv6SubnetMin', 'IPv6SubnetMax'] as const) {
    if (v[f] === undefined || (v[f] === null && f !== 'IPv6Network')) continue; // the bounds are pointers in flannel: null is unset
    const text = goTextValue(f, v[f]);
    try {
      const p = f === 'IPv6Network' ? parsePrefix(text) : parsePrefix(`${text}/128`);
      if (p.family !== 6) throw new Error('not IPv6');
    } catch (cause) {
      throw new ConfigError(f, `${JSON.stringify(text)} is not an IPv6 ${f === 'IPv6Network' ? 'prefix' : 'address'}`, { cause });
    }
  }
  const len = goInt('IPv6SubnetLen', v.IPv6SubnetLen, true);
  if (len !== undefined && len > 126) throw new ConfigError('IPv6SubnetLen', `must be at most 126, got ${len}`);
  if (goBool('EnableIPv6', v.EnableIPv6)) {
    throw new ConfigError('EnableIPv6', 'IPv6 overlays are not supported by tulle yet; remove it or set it to false');
  }
}

function parseBackend(v: unknown, present: boolean, notices: string[]): BackendConfig {
  if (!present) return Object.freeze({ type: 'udp', port: UDP_DEFAULT_PORT }); // flanneld: no Backend → udp
  if (v !== null && !isJsonObject(v)) throw new ConfigError('Backend', 'must be an object like {"Type": "udp"}');
  const obj: JsonObject = v ?? {};
  const typeText = goString('Backend.Type', matchFields(obj, ['Type']).values.Type) ?? '';
  const type = typeText.toLowerCase();
  if (type !== 'udp' && type !== 'wireguard') {
    if (type === '') throw new ConfigError('Backend.Type', 'is required when Backend is given (flanneld: unknown backend type ""); use "udp" or "wireguard"');
    const why = FLANNEL_ONLY_BACKENDS.includes(type) ? 'is a flannel backend that tulle does not run' : 'is not a flannel backend type';
    throw new ConfigError('Backend.Type', `${JSON.stringify(typeText)} ${why} (tulle runs "udp" and "wireguard")`);
  }
  const m = matchFields(obj, BACKEND_FIELDS[type]);
  for (const k of m.unknown) notices.push(`unknown field "Backend.${k}" ignored for Backend.Type "${type}" (as flanneld does)`);
  const b = m.values as Record<string, unknown>;
  if (type === 'udp') {
    const port = goInt('Backend.Port', b.Port, false) ?? UDP_DEFAULT_PORT;
    if (port < 1 || port > 65535) throw new ConfigError('Backend.Port', `must be a port 1..65535, got ${port}`);
    return Object.freeze({ type, port });
  }
  const listenPort = goInt('Backend.ListenPort', b.ListenPort, false) ?? WIREGUARD_DEFAULT_PORT;
  if (listenPort < 1 || listenPort > 65535) throw new ConfigError('Backend.ListenPort', `must be a port 1..65535, got ${listenPort}`);
  const v6Port = goInt('Backend.ListenPortV6', b.ListenPortV6, false);
  if (v6Port !== undefined && (v6Port < 1 || v6Port > 65535)) throw new ConfigError('Backend.ListenPortV6', `must be a port 1..65535, got ${v6Port}`);
  const mode = goString('Backend.Mode', b.Mode);
  if (mode !== undefined && !['separate', 'auto', 'ipv4', 'ipv6'].includes(mode)) {
    throw new ConfigError('Backend.Mode', `must be one of "separate", "auto", "ipv4", "ipv6" (flanneld: no valid Mode configured), got ${JSON.stringify(mode)}`);
  }
  let psk = goString('Backend.PSK', b.PSK);
  if (psk === '') psk = undefined; // flanneld: an empty PSK is no PSK
  if (psk !== undefined && (!/^[A-Za-z0-9+/]{43}=$/.test(psk) || Buffer.from(psk, 'base64').length !== 32)) {
    throw new ConfigError('Backend.PSK', 'must be the base64 of 32 bytes (as `wg genpsk` prints), or "" for none');
  }
  const mtu = goInt('Backend.MTU', b.MTU, false);
  const minMtu = MIN_TUN_MTU + WIREGUARD_MTU_OVERHEAD;
  if (mtu !== undefined && (mtu < minMtu || mtu > 65535)) {
    throw new ConfigError('Backend.MTU', `is the underlay MTU (the TUN gets MTU − ${WIREGUARD_MTU_OVERHEAD}, as in flanneld); tulle needs ${minMtu}..65535, got ${mtu}`);
  }
  const keepalive = goInt('Backend.PersistentKeepaliveInterval', b.PersistentKeepaliveInterval, false) ?? 0;
  if (keepalive < 0 || keepalive > 65535) {
    throw new ConfigError('Backend.PersistentKeepaliveInterval', `must be 0..65535 seconds, got ${keepalive}`);
  }
  return Object.freeze({ type, listenPort, psk, mtu, persistentKeepaliveSeconds: keepalive });
}
