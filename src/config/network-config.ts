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
import { formatNet, formatValue, isAligned, maskNet, netContains, netSize, parseNet, parseValue, type Family, type Net } from '../util/ip.js';
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
      /** flanneld's ListenPortV6 (default 51821): the IPv6 tunnel's port in Mode "separate" */
      listenPortV6: number;
      /** flanneld's Mode: "separate" (default: one tunnel per family, each over its own underlay
       * family), or one tunnel for both families over IPv4 ("ipv4"), IPv6 ("ipv6") or per peer ("auto") */
      mode: WireguardMode;
      /** base64 of a 32-byte pre-shared key, or undefined */
      psk: string | undefined;
      /** flanneld's Backend.MTU: the underlay MTU (TUN MTU = this − 80); undefined: the interface's */
      mtu: number | undefined;
      persistentKeepaliveSeconds: number;
    }>;

export type BackendType = BackendConfig['type'];
export type WireguardMode = 'separate' | 'auto' | 'ipv4' | 'ipv6';
export const WIREGUARD_DEFAULT_PORT_V6 = 51821;

/** One family's overlay: flannel's Network/SubnetLen/SubnetMin/SubnetMax or their IPv6* twins. */
export interface SubnetRange {
  readonly family: Family;
  /** the whole overlay, e.g. 10.244.0.0/16 or fd00:10:244::/56 */
  readonly network: string;
  readonly subnetLen: number;
  /** first and last subnet (network addresses) that may be leased */
  readonly subnetMin: string;
  readonly subnetMax: string;
}

export interface NetworkConfig {
  /** flanneld's Network & co. when EnableIPv4 (default true), else undefined (IPv6-only) */
  readonly ipv4: SubnetRange | undefined;
  /** flanneld's IPv6Network & co. when EnableIPv6, else undefined */
  readonly ipv6: SubnetRange | undefined;
  readonly backend: BackendConfig;
  /** flanneld's EnableNFTables: masquerade/forward rules in nftables instead of iptables */
  readonly enableNFTables: boolean;
}

/** The families this network runs, IPv4 first (flanneld's order everywhere). */
export function rangesOf(c: Pick<NetworkConfig, 'ipv4' | 'ipv6'>): SubnetRange[] {
  return [c.ipv4, c.ipv6].filter((r): r is SubnetRange => r !== undefined);
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
type ConfigValues = Partial<Record<(typeof CONFIG_FIELDS)[number], unknown>>;
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

  // flanneld: EnableIPv4 defaults to true; neither family is "none defined stack"
  const enableIPv4 = goBool('EnableIPv4', v.EnableIPv4) ?? true;
  const enableIPv6 = goBool('EnableIPv6', v.EnableIPv6) ?? false;
  if (!enableIPv4 && !enableIPv6) throw new ConfigError('EnableIPv4', 'and EnableIPv6 are both false: no IP family left to run (flanneld: none defined stack)');
  const enableNFTables = goBool('EnableNFTables', v.EnableNFTables) ?? false;
  // what flanneld decodes is checked even for a disabled family (a bad value fails its JSON decode)
  const net4 = readNetwork(FIELDS[4], v, notices);
  const net6 = readNetwork(FIELDS[6], v, notices);

  const config: NetworkConfig = Object.freeze({
    ipv4: enableIPv4 ? checkRange(FIELDS[4], net4, v) : undefined,
    ipv6: enableIPv6 ? checkRange(FIELDS[6], net6, v) : undefined,
    backend: parseBackend(m.values.Backend, 'Backend' in m.values, notices),
    enableNFTables,
  });
  return { config, notices };
}

/** Field names and flanneld's numbers for one family (pkg/subnet/config.go CheckNetworkConfig). */
interface FamilyFields {
  family: Family;
  network: 'Network' | 'IPv6Network';
  subnetLen: 'SubnetLen' | 'IPv6SubnetLen';
  subnetMin: 'SubnetMin' | 'IPv6SubnetMin';
  subnetMax: 'SubnetMax' | 'IPv6SubnetMax';
  example: string;
  /** longest SubnetLen: two addresses for the tunnel and the bridge */
  maxSubnetLen: number;
  /** a Network longer than this cannot hold four subnets of four addresses */
  maxNetworkLen: number;
  /** networks up to this length get defaultSubnetLen; longer ones prefix + 2 */
  defaultUpTo: number;
  defaultSubnetLen: number;
}

const FIELDS: Record<Family, FamilyFields> = {
  4: {
    family: 4, network: 'Network', subnetLen: 'SubnetLen', subnetMin: 'SubnetMin', subnetMax: 'SubnetMax',
    example: '10.244.0.0/16', maxSubnetLen: 30, maxNetworkLen: 28, defaultUpTo: 22, defaultSubnetLen: 24,
  },
  6: {
    family: 6, network: 'IPv6Network', subnetLen: 'IPv6SubnetLen', subnetMin: 'IPv6SubnetMin', subnetMax: 'IPv6SubnetMax',
    example: 'fd00:10:244::/56', maxSubnetLen: 126, maxNetworkLen: 124, defaultUpTo: 62, defaultSubnetLen: 64,
  },
};

interface ReadFamily {
  /** undefined: absent or empty (0.0.0.0/0, ::/0: flanneld's Empty()) */
  net: Net | undefined;
  subnetLen: number | undefined;
  subnetMin: bigint | undefined;
  subnetMax: bigint | undefined;
}

function readNetwork(f: FamilyFields, v: ConfigValues, notices: string[]): ReadFamily {
  return {
    net: parseNetwork(f, v[f.network], notices),
    subnetLen: goInt(f.subnetLen, v[f.subnetLen], true),
    subnetMin: readBound(f, f.subnetMin, v[f.subnetMin]),
    subnetMax: readBound(f, f.subnetMax, v[f.subnetMax]),
  };
}

function parseNetwork(f: FamilyFields, v: unknown, notices: string[]): Net | undefined {
  if (v === undefined) return undefined;
  const text = goTextValue(f.network, v);
  let n: Net;
  try {
    n = parseNet(text, f.family);
  } catch (cause) {
    throw new ConfigError(f.network, `${JSON.stringify(text)} is not an ${f.family === 4 ? 'IPv4' : 'IPv6'} prefix`, { cause });
  }
  const masked = maskNet(n);
  if (masked.base === 0n && masked.len === 0) return undefined; // flanneld's Empty(): as if absent
  if (masked.base !== n.base) notices.push(`${f.network} ${text} has host bits set; using ${formatNet(masked)} (as flanneld does)`);
  return masked;
}

function readBound(f: FamilyFields, field: string, v: unknown): bigint | undefined {
  if (v === undefined || (v === null && f.family === 6)) return undefined; // IPv6 bounds are pointers in flannel: null is unset
  const text = goTextValue(field, v);
  let value: bigint;
  try {
    value = parseValue(text, f.family).value;
  } catch (cause) {
    throw new ConfigError(field, `${JSON.stringify(text)} is not an ${f.family === 4 ? 'IPv4' : 'IPv6'} address`, { cause });
  }
  return value === 0n ? undefined : value; // flanneld: 0.0.0.0 and :: are "not set"
}

/** flanneld's CheckNetworkConfig for one enabled family: defaults filled in, every error named. */
function checkRange(f: FamilyFields, r: ReadFamily, v: ConfigValues): SubnetRange {
  const net = r.net;
  if (!net) {
    if (v[f.network] !== undefined) throw new ConfigError(f.network, `must not be ${f.family === 4 ? '0.0.0.0/0' : '::/0'} (flanneld reads it as no ${f.network})`);
    throw new ConfigError(f.network, `is required${f.family === 6 ? ' when EnableIPv6 is true' : ''} (e.g. "${f.example}")`);
  }
  let subnetLen = r.subnetLen ?? 0;
  if (subnetLen > 0) {
    if (subnetLen > f.maxSubnetLen) {
      throw new ConfigError(f.subnetLen, `must be at most ${f.maxSubnetLen} (flanneld: less than /${f.maxSubnetLen + 1}), got ${subnetLen}`);
    }
    if (subnetLen < net.len + 2) {
      throw new ConfigError(f.subnetLen, `/${subnetLen} leaves fewer than four subnets in ${formatNet(net)}; use at least /${net.len + 2}`);
    }
  } else {
    if (net.len > f.maxNetworkLen) {
      throw new ConfigError(f.network, `${formatNet(net)} is too small; the smallest useful network is a /${f.maxNetworkLen}`);
    }
    subnetLen = net.len <= f.defaultUpTo ? f.defaultSubnetLen : net.len + 2;
  }
  const size = netSize(f.family, subnetLen);
  const bound = (field: string, value: bigint | undefined, dflt: bigint): bigint => {
    if (value === undefined) return dflt;
    const text = formatValue(f.family, value);
    if (!netContains(net, value)) throw new ConfigError(field, `${text} is not inside ${f.network} ${formatNet(net)}`);
    if (!isAligned(f.family, value, subnetLen)) throw new ConfigError(field, `${text} is not on a /${subnetLen} (${f.subnetLen}) boundary`);
    return value;
  };
  const subnetMin = bound(f.subnetMin, r.subnetMin, net.base + size);
  const subnetMax = bound(f.subnetMax, r.subnetMax, net.base + netSize(f.family, net.len) - size);
  if (subnetMin > subnetMax) {
    throw new ConfigError(f.subnetMin, `${formatValue(f.family, subnetMin)} is above ${f.subnetMax} ${formatValue(f.family, subnetMax)}`);
  }
  return Object.freeze({
    family: f.family,
    network: formatNet(net),
    subnetLen,
    subnetMin: formatValue(f.family, subnetMin),
    subnetMax: formatValue(f.family, subnetMax),
  });
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
  const listenPortV6 = goInt('Backend.ListenPortV6', b.ListenPortV6, false) ?? WIREGUARD_DEFAULT_PORT_V6;
  if (listenPortV6 < 1 || listenPortV6 > 65535) throw new ConfigError('Backend.ListenPortV6', `must be a port 1..65535, got ${listenPortV6}`);
  const mode = (goString('Backend.Mode', b.Mode) ?? 'separate') as WireguardMode;
  if (!['separate', 'auto', 'ipv4', 'ipv6'].includes(mode)) {
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
  return Object.freeze({ type, listenPort, listenPortV6, mode, psk, mtu, persistentKeepaliveSeconds: keepalive });
}
