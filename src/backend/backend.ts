/**
 * The backend seam: what differs between plain `udp` and encrypted `wireguard`.
 * (`wireguard`: src/wireguard/wireguard-backend.ts.)
 * A backend says what its leases carry (BackendData), how a peer's lease becomes a data-plane
 * endpoint, how much the encapsulation costs (MTU overhead), and starts its data plane.
 * Everything else (leases, routes, TUN, subnet.env) is shared.
 */
import type { BackendConfig, BackendType } from '../config/network-config.js';
import type { DataPlane, DataPlaneOptions } from '../dataplane/dataplane.js';
import type { Lease, LeaseAttrs } from '../lease/lease.js';
import type client from 'prom-client';
import type { PeerTraffic, PeerView } from '../control/status-snapshot.js';
import type { UapiDevice } from '../wireguard/uapi.js';

export interface Endpoint {
  address: string;
  port: number;
}

/**
 * The network's families and this node's underlay addresses: what a backend needs to write its
 * lease data and to pick the underlay family for each peer.
 */
export interface Stack {
  /** EnableIPv4 / EnableIPv6 of the network config */
  ipv4: boolean;
  ipv6: boolean;
  /** this node's IPv6 underlay address (--public-ipv6 or the interface's), if any */
  publicIpv6?: string | undefined;
}

export const IPV4_ONLY: Stack = Object.freeze({ ipv4: true, ipv6: false });

/** flanneld's PublicIP of a node without one (IPv6 only) */
const NO_IPV4 = '0.0.0.0';

/** A peer's underlay address in a family, or undefined when its lease has none. */
export function underlayAddress(attrs: { PublicIP: string; PublicIPv6?: string | null | undefined }, family: 4 | 6): string | undefined {
  if (family === 4) return attrs.PublicIP !== NO_IPV4 ? attrs.PublicIP : undefined;
  return attrs.PublicIPv6 ?? undefined;
}

/**
 * ipv6Endpoint: a second tunnel for the lease's IPv6 subnet (wireguard Mode "separate", flanneld's
 * second device): its endpoint, or null when the peer has none (the IPv6 subnet is then not
 * routed). Absent: every subnet of the lease goes to `endpoint`.
 */
export type PeerResult = { ok: true; endpoint: Endpoint; ipv6Endpoint?: Endpoint | null } | { ok: false; reason: string };

export interface Backend {
  readonly type: BackendType;
  /** bytes of outer headers: TUN MTU = underlay MTU − overhead (unless the config fixes it) */
  mtuFor(underlayMtu: number): number;
  /** BackendData / BackendV6Data for this node's lease (plain mode has none) */
  leaseData(): Pick<LeaseAttrs, 'BackendData' | 'BackendV6Data'>;
  /** whether some peer is reached over IPv6: then startDataPlane binds its socket to :: (dual-stack) */
  readonly ipv6Underlay?: boolean;
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

export type BackendFactory = (config: BackendConfig, stack?: Stack) => Backend;
