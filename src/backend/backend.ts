/**
 * The backend seam: what differs between plain `udp` and encrypted `wireguard`.
 * (`wireguard`: src/wireguard/wireguard-backend.ts.)
 * A backend says what its leases carry (BackendData), how a peer's lease becomes a data-plane
 * endpoint, how much the encapsulation costs (MTU overhead), and starts its data plane.
 * Everything else (leases, routes, TUN, subnet.env) is shared.
 */
import type { BackendConfig, BackendType } from '../config/network-config.js';
import type { DataPlane, DataPlaneOptions } from '../dataplane/dataplane.js';
import type { Lease } from '../lease/lease.js';
import type client from 'prom-client';
import type { PeerTraffic, PeerView } from '../control/status-snapshot.js';
import type { UapiDevice } from '../wireguard/uapi.js';

export interface Endpoint {
  address: string;
  port: number;
}

export type PeerResult = { ok: true; endpoint: Endpoint } | { ok: false; reason: string };

export interface Backend {
  readonly type: BackendType;
  /** bytes of outer headers: TUN MTU = underlay MTU − overhead (unless the config fixes it) */
  mtuFor(underlayMtu: number): number;
  /** BackendData for this node's lease, or undefined (plain mode has none) */
  leaseData(): unknown;
  /** Turns another node's lease into a data-plane endpoint, or says why it cannot. */
  peerOf(lease: Lease): PeerResult;
  startDataPlane(o: Omit<DataPlaneOptions, 'port'>): DataPlane;
  /** backend-specific status for /healthz (wireguard: public key, handshake counters) */
  status?(): Record<string, unknown>;
  /** what a peer looks like to this backend (wireguard: key, handshake, keepalive), for status and `wg show` */
  peerDetails?(id: number): PeerDetails | undefined;
  /** encrypted mode: the device as WireGuard's userspace API shows it (`wg show`), keys included */
  uapiDevice?(peers: readonly PeerView[]): UapiDevice;
  /** backend-specific Prometheus collectors (wireguard: handshake counters), read at scrape time */
  registerMetrics?(registry: client.Registry): void;
}

/** Times are wall-clock ms since the epoch (undefined: never). */
export interface PeerDetails {
  publicKey?: string;
  /** where the peer is now (encrypted mode follows roaming) */
  endpoint?: Endpoint;
  lastHandshakeAt?: number;
  lastSentAt?: number;
  lastReceivedAt?: number;
  persistentKeepaliveSeconds?: number;
  /** encrypted mode: handshake messages sent to and accepted from the peer, which WireGuard
   * counts in the peer's transfer beside the data plane's transport messages */
  handshakes?: PeerTraffic;
}

export type BackendFactory = (config: BackendConfig) => Backend;
