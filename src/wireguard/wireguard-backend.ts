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

/** The wireguard arm of the daemon's BackendConfig (network-config.ts). */
export interface WireGuardBackendConfig {
  type: 'wireguard';
  listenPort: number;
  psk: string | undefined;
  persistentKeepaliveSeconds: number;
}

interface LeaseLike {
  readonly subnet: string;
  readonly attrs: Readonly<{ PublicIP: string; BackendType: string; BackendData?: unknown }>;
}

type PeerResult = { ok: true; endpoint: { address: string; port: number } } | { ok: false; reason: string };

export interface WireGuardBackend {
  readonly type: 'wireguard';
  mtuFor(underlayMtu: number): number;
  leaseData(): unknown;
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
  const keysByEndpoint = new Map<string, string>(); // address:port → base64 public key
  const peerIds = new Map<string, number>(); // address:port → data-plane peer id
  let device: WireGuardDevice | undefined;
  let clockOf: DataPlane | undefined; // the data plane's monotonic clock (peer activity)

  const addDevicePeer = (id: number, address: string, port: number) => {
    const k = keysByEndpoint.get(`${address}:${port}`);
    if (!k || !device) return;
    // one key, one place: a node that moved leaves its old lease behind until it expires; the
    // latest endpoint for a key wins (the old one's subnet then has no peer: dropped, counted)
    const holder = device.peerWithKey(Buffer.from(k, 'base64'));
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
    });
    peerIds.set(`${address}:${port}`, id);
  };

  return {
    type: 'wireguard',
    get device() {
      return device;
    },
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
        privateKey: key.privateKey, listenPort: clockOf?.port ?? config.listenPort,
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
    leaseData: () => encodeBackendData(key.publicKey, config.listenPort),
    peerOf(lease) {
      if (lease.attrs.BackendType !== WIREGUARD_BACKEND_TYPE) {
        return { ok: false, reason: `backend type "${lease.attrs.BackendType}" is not this network's "wireguard"` };
      }
      let data: { publicKey: Uint8Array; port: number };
      try {
        data = decodeBackendData(lease.attrs.BackendData, lease.subnet, config.listenPort);
      } catch (e) {
        return { ok: false, reason: (e as Error).message };
      }
      const ep = `${lease.attrs.PublicIP}:${data.port}`;
      const b64 = Buffer.from(data.publicKey).toString('base64');
      const old = keysByEndpoint.get(ep);
      keysByEndpoint.set(ep, b64);
      const id = peerIds.get(ep);
      if (old !== undefined && old !== b64 && id !== undefined) addDevicePeer(id, lease.attrs.PublicIP, data.port); // new key, same place
      return { ok: true, endpoint: { address: lease.attrs.PublicIP, port: data.port } };
    },
    startDataPlane(o) {
      const start = deps.start ?? startDataPlane;
      const dp = start({ ...o, port: config.listenPort, encrypted: true, publicKey: key.publicKey, onEvents: () => device?.onEvents() });
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
