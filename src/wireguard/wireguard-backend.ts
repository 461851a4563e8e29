/**
 * Encrypted mode behind the daemon's backend seam (src/backend/backend.ts on the control-plane
 * branch: mtuFor, leaseData, peerOf, startDataPlane). The types here are structural copies of
 * that seam so this module stands alone until the daemon lands; the daemon's selectBackend
 * calls `createWireguardBackend(config.backend, stateDir)` for `Backend.Type: "wireguard"`.
 *
 *   lease table ─ peerOf(lease) ─▶ endpoint (PublicIP:Port) + the lease's public key, noted here
 *   peer directory ─ setPeer/deletePeer ─▶ wrapped apply ─▶ WireGuardDevice.addPeer/removePeer
 *   setRoute/deleteRoute ─▶ straight to the data plane (routes name the peer id)
 *
 * The peer directory keys peers by endpoint, so a node that comes back at the same address
 * with a new key is noticed in peerOf and its device peer replaced.
 */
import { startDataPlane, type DataPlane, type DataPlaneOptions } from '../dataplane/dataplane.js';
import type { Command } from '../dataplane/commands.js';
import { WireGuardDevice, type Logger } from './device.js';
import { registerHandshakeMetrics } from './metrics.js';
import type client from 'prom-client';
import { decodeBackendData, encodeBackendData, WIREGUARD_BACKEND_TYPE } from './backend-data.js';
import { WIREGUARD_OVERHEAD_IPV6 } from './encrypted-node.js';
import { decodeKey, loadOrCreateKey } from './key-file.js';
import type { Timing } from './timers.js';
import type { PeerDetails } from '../backend/backend.js';
import type { PeerView } from '../control/status-snapshot.js';
import { formatEndpoint, type UapiDevice } from './uapi.js';
import { START_HANDSHAKE_WINDOW_MS } from './tuning.js';
import { IPV4_ONLY, underlayAddress, type Stack } from '../backend/backend.js';
import { WIREGUARD_DEFAULT_PORT_V6, type WireguardMode } from '../config/network-config.js';
import { parseAddress } from '../util/ip.js';

/** The wireguard arm of the daemon's BackendConfig (network-config.ts). */
export interface WireGuardBackendConfig {
  type: 'wireguard';
  listenPort: number;
  /** flanneld's ListenPortV6 (default 51821) and Mode (default "separate"); see tunnelFamily() */
  listenPortV6?: number;
  mode?: WireguardMode;
  psk: string | undefined;
  persistentKeepaliveSeconds: number;
}

interface LeaseLike {
  readonly subnet: string;
  readonly attrs: Readonly<{ PublicIP: string; PublicIPv6?: string | null; BackendType: string; BackendData?: unknown; BackendV6Data?: unknown }>;
}

type Endpoint = { address: string; port: number };
type PeerResult = { ok: true; endpoint: Endpoint; ipv6Endpoint?: Endpoint | null } | { ok: false; reason: string };

export interface WireGuardBackend {
  readonly type: 'wireguard';
  mtuFor(underlayMtu: number): number;
  leaseData(): { BackendData?: unknown; BackendV6Data?: unknown };
  readonly ipv6Underlay: boolean;
  peerOf(lease: LeaseLike): PeerResult;
  startDataPlane(o: Omit<DataPlaneOptions, 'port'>): DataPlane;
  /** the running device (after startDataPlane): counters, sessions */
  readonly device: WireGuardDevice | undefined;
  /** for /healthz: public key, handshake counters, installed sessions per peer id */
  status(): Record<string, unknown>;
  /** Prometheus: the handshake device's counters, read at scrape time */
  registerMetrics(registry: client.Registry): void;
  /** for `tulle status` and `wg show`: the peer's key, endpoint, handshake and keepalive */
  peerDetails(id: number): PeerDetails | undefined;
  /** for WireGuard's userspace API (`wg show`): our keys and port, and each peer (see uapi.ts) */
  uapiDevice(peers: readonly PeerView[]): UapiDevice;
}

export interface WireGuardBackendDeps {
  start?: (o: DataPlaneOptions) => DataPlane;
  timing?: Partial<Timing>;
  logger?: Logger;
  /** the network's families and our IPv6 underlay address (default IPv4 only) */
  stack?: Stack;
}

/**
 * flanneld runs one kernel device per family in Mode "separate" (IPv4 tunnel over the IPv4
 * underlay on ListenPort, IPv6 tunnel over the IPv6 underlay on ListenPortV6) and one device for
 * both otherwise, over IPv4 ("ipv4"), IPv6 ("ipv6"), or per peer ("auto": see autoFamily).
 * tulle does the same: in a dual-stack network with Mode "separate" (separateTunnels) two socket
 * sets and two peers per node, one per tunnel, with the same key; otherwise one socket and one
 * tunnel per peer, over the family this function picks ("separate" with one family: that family).
 */
export function tunnelFamily(mode: WireguardMode, stack: Stack, peer: LeaseLike['attrs']): 4 | 6 {
  switch (mode) {
    case 'ipv4':
      return 4;
    case 'ipv6':
      return 6;
    case 'auto':
      return autoFamily(peer, stack);
    case 'separate':
      return stack.ipv4 ? 4 : 6;
  }
}

/** Mode "separate" in a dual-stack network: flanneld's two devices, an IPv4 and an IPv6 tunnel. */
export function separateTunnels(mode: WireguardMode, stack: Stack): boolean {
  return mode === 'separate' && stack.ipv4 && stack.ipv6;
}

/**
 * flanneld's selectMode: IPv4 if the peer has no IPv6 address, or a public (not RFC 1918) IPv4 one
 * while we have IPv4 (flanneld: an external IPv4 address; tulle: IPv4 enabled, which gives one);
 * else IPv6 if both the peer's and our IPv6 addresses are public (not fc00::/7); else IPv4.
 */
export function autoFamily(peer: LeaseLike['attrs'], stack: Stack): 4 | 6 {
  if (!peer.PublicIPv6) return 4;
  if (!isPrivate4(peer.PublicIP) && stack.ipv4) return 4;
  if (!isPrivate6(peer.PublicIPv6) && stack.publicIpv6 !== undefined && !isPrivate6(stack.publicIpv6)) return 6;
  return 4;
}

function isPrivate4(a: string): boolean {
  const [x, y] = a.split('.').map(Number) as [number, number];
  return x === 10 || (x === 172 && y >= 16 && y < 32) || (x === 192 && y === 168);
}

function isPrivate6(a: string): boolean {
  return (parseAddress(a).bytes[0]! & 0xfe) === 0xfc;
}

export async function createWireguardBackend(
  config: WireGuardBackendConfig,
  stateDir: string,
  deps: WireGuardBackendDeps = {},
): Promise<WireGuardBackend> {
  const key = await loadOrCreateKey(stateDir);
  deps.logger?.info({ publicKey: key.publicKeyBase64, created: key.created }, 'wireguard static key');
  return wireguardBackend(config, key, deps);
}

export function wireguardBackend(
  config: WireGuardBackendConfig,
  key: { privateKey: Uint8Array; publicKey: Uint8Array },
  deps: WireGuardBackendDeps = {},
): WireGuardBackend {
  const psk = config.psk ? decodeKey(config.psk, 'Backend.PSK') : undefined;
  const stack = deps.stack ?? IPV4_ONLY;
  const mode = config.mode ?? 'separate';
  const listenPortV6 = config.listenPortV6 ?? WIREGUARD_DEFAULT_PORT_V6;
  const split = separateTunnels(mode, stack);
  // the (first) socket's port: ListenPort while IPv4 is on; in an IPv6-only network ListenPortV6,
  // the port the lease names (flanneld's only device there, in Mode "separate")
  const listenPort = stack.ipv4 ? config.listenPort : listenPortV6;
  // one socket that may reach a peer over IPv6: then it is dual-stack (bound to ::)
  const ipv6Underlay = !split && (mode === 'ipv6' || (mode === 'separate' && !stack.ipv4) || (mode === 'auto' && stack.publicIpv6 !== undefined));
  const keysByEndpoint = new Map<string, string>(); // address:port → base64 public key
  const peerIds = new Map<string, number>(); // address:port → data-plane peer id
  /** the tunnel of an endpoint in Mode "separate" (its address family), else none */
  const tunnelOf = (address: string): 4 | 6 | undefined => (split ? (address.includes(':') ? 6 : 4) : undefined);
  /**
   * A peer's port in a family, as flanneld reads it: the lease's port for that tunnel, 0 or none
   * meaning our own port for it. One tunnel (not "separate"): the peer's one socket is where its
   * BackendData.Port says (flanneld dials BackendV6Data.Port over IPv6, where a node with one
   * device does not listen); BackendV6Data only in an IPv6-only network.
   */
  const dataOf = (lease: LeaseLike, family: 4 | 6) => {
    const v6 = split ? family === 6 : !stack.ipv4 || lease.attrs.BackendData === undefined;
    return v6
      ? decodeBackendData(lease.attrs.BackendV6Data ?? lease.attrs.BackendData, lease.subnet, split ? listenPortV6 : listenPort, 'BackendV6Data')
      : decodeBackendData(lease.attrs.BackendData ?? lease.attrs.BackendV6Data, lease.subnet, listenPort, 'BackendData');
  };
  /** notes the key at an endpoint; a new key at a known endpoint replaces the device peer */
  const noteKey = (address: string, data: { publicKey: Uint8Array; port: number }) => {
    const ep = `${address}:${data.port}`;
    const b64 = Buffer.from(data.publicKey).toString('base64');
    const old = keysByEndpoint.get(ep);
    keysByEndpoint.set(ep, b64);
    const id = peerIds.get(ep);
    if (old !== undefined && old !== b64 && id !== undefined) addDevicePeer(id, address, data.port); // new key, same place
  };
  let device: WireGuardDevice | undefined;
  let clockOf: DataPlane | undefined; // the data plane's monotonic clock (peer activity)

  const addDevicePeer = (id: number, address: string, port: number) => {
    const k = keysByEndpoint.get(`${address}:${port}`);
    if (!k || !device) return;
    // one key, one place: a node that moved leaves its old lease behind until it expires; the
    // latest endpoint for a key wins (the old one's subnet then has no peer: dropped, counted)
    const tunnel = tunnelOf(address);
    const holder = device.peerWithKey(Buffer.from(k, 'base64'), tunnel);
    if (holder !== undefined && holder !== id) {
      deps.logger?.warn({ publicKey: k, from: holder, to: id, endpoint: `${address}:${port}` }, 'public key moved to another lease');
      device.removePeer(holder);
      for (const [ep, pid] of peerIds) if (pid === holder) peerIds.delete(ep);
    }
    device.addPeer({
      id,
      publicKey: Buffer.from(k, 'base64'),
      endpoint: { address, port },
      presharedKey: psk,
      persistentKeepaliveMs: config.persistentKeepaliveSeconds * 1000,
      tunnel,
    });
    peerIds.set(`${address}:${port}`, id);
  };

  return {
    type: 'wireguard',
    get device() {
      return device;
    },
    ipv6Underlay,
    // flanneld reserves room for an IPv6 underlay header whatever the underlay: FLANNEL_MTU = MTU − 80
    mtuFor: (underlayMtu) => underlayMtu - WIREGUARD_OVERHEAD_IPV6,
    registerMetrics(registry) {
      registerHandshakeMetrics(registry, () => device);
    },
    status() {
      const sessions: Record<string, number> = {};
      for (const id of new Set(peerIds.values())) sessions[String(id)] = device?.sessionsOf(id).length ?? 0;
      return { publicKey: Buffer.from(key.publicKey).toString('base64'), handshakes: { ...device?.counters }, sessions };
    },
    peerDetails(id) {
      const p = device?.peerInfo(id);
      if (!p || !clockOf) return undefined;
      const mono = clockOf.monotonicMs();
      const wall = Date.now();
      const at = (t: number) => (Number.isFinite(t) ? Math.round(wall - (mono - t)) : undefined);
      return {
        publicKey: Buffer.from(p.publicKey).toString('base64'), endpoint: p.endpoint, lastHandshakeAt: at(p.handshakeAt),
        lastSentAt: at(p.lastSent), lastReceivedAt: at(p.lastReceived), persistentKeepaliveSeconds: Math.round(p.persistentKeepaliveMs / 1000),
        handshakes: p.handshakes,
      };
    },
    uapiDevice(peers) {
      return {
        privateKey: key.privateKey, listenPort: clockOf?.port ?? listenPort,
        peers: peers.flatMap((p) => {
          const info = device?.peerInfo(p.id);
          if (!info) return [];
          return [{
            publicKey: info.publicKey, presharedKey: psk, endpoint: formatEndpoint(info.endpoint.address, info.endpoint.port), allowedIps: p.subnets,
            lastHandshakeAt: p.lastHandshakeAt, rxBytes: p.traffic?.rxBytes ?? 0, txBytes: p.traffic?.txBytes ?? 0,
            persistentKeepaliveSeconds: Math.round(info.persistentKeepaliveMs / 1000),
          }];
        }),
      };
    },
    // as flanneld's newSubnetAttrs: BackendData when IPv4 is enabled, BackendV6Data when IPv6 is, the
    // same key in both, ListenPort and ListenPortV6 whatever the Mode
    leaseData: () => ({
      ...(stack.ipv4 ? { BackendData: encodeBackendData(key.publicKey, config.listenPort) } : {}),
      ...(stack.ipv6 ? { BackendV6Data: encodeBackendData(key.publicKey, listenPortV6) } : {}),
    }),
    peerOf(lease) {
      if (lease.attrs.BackendType !== WIREGUARD_BACKEND_TYPE) {
        return { ok: false, reason: `backend type "${lease.attrs.BackendType}" is not this network's "wireguard"` };
      }
      const family = split ? 4 : tunnelFamily(mode, stack, lease.attrs);
      const address = underlayAddress(lease.attrs, family);
      if (address === undefined) return { ok: false, reason: `Mode "${mode}" reaches this peer over IPv${family}, but its lease has no ${family === 4 ? 'PublicIP' : 'PublicIPv6'}` };
      let data: { publicKey: Uint8Array; port: number };
      let v6: { address: string; data: { publicKey: Uint8Array; port: number } } | null = null;
      try {
        data = dataOf(lease, family);
        // Mode "separate": the IPv6 tunnel to [PublicIPv6]:BackendV6Data.Port; none without a PublicIPv6
        const address6 = split ? underlayAddress(lease.attrs, 6) : undefined;
        if (address6 !== undefined) v6 = { address: address6, data: dataOf(lease, 6) };
      } catch (e) {
        return { ok: false, reason: (e as Error).message };
      }
      noteKey(address, data);
      if (v6) noteKey(v6.address, v6.data);
      const endpoint = { address, port: data.port };
      if (!split) return { ok: true, endpoint };
      return { ok: true, endpoint, ipv6Endpoint: v6 && { address: v6.address, port: v6.data.port } };
    },
    startDataPlane(o) {
      const start = deps.start ?? startDataPlane;
      const sockets = split ? { ipv6Port: listenPortV6 } : ipv6Underlay ? { bindAddress: '::' } : {};
      const dp = start({ ...o, port: listenPort, ...sockets, encrypted: true, publicKey: key.publicKey, onEvents: () => device?.onEvents() });
      // a daemon that starts has no sessions, while its peers may still hold one with its previous
      // run: it initiates to every peer it learns at start, paced (docs/encryption.md, restarts)
      const dev = new WireGuardDevice({
        privateKey: key.privateKey, dataPlane: dp, timing: deps.timing, logger: deps.logger, initiateOnStartMs: START_HANDSHAKE_WINDOW_MS,
      });
      device = dev;
      clockOf = dp;
      dev.start();
      const apply = (commands: readonly Command[]) => {
        const rest: Command[] = [];
        const flush = () => rest.length && dp.apply(rest.splice(0));
        for (const c of commands) {
          if (c.op === 'setPeer') {
            flush();
            addDevicePeer(c.peer, c.address, c.port);
          } else if (c.op === 'deletePeer') {
            flush();
            for (const [ep, id] of peerIds) if (id === c.peer) peerIds.delete(ep);
            dev.removePeer(c.peer);
          } else {
            rest.push(c);
          }
        }
        flush();
      };
      return {
        ...dp,
        tunName: dp.tunName,
        port: dp.port,
        apply,
        stop() {
          dev.stop();
          dp.stop();
        },
      };
    },
  };
}
