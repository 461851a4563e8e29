/**
 * One node in encrypted mode, wired together: a data plane with WireGuard transport, the
 * handshake device driving it, the TUN configured. What the daemon's wireguard backend, the
 * integration tests and the bench all start.
 *
 *   const node = await startEncryptedNode({ privateKey, address: '10.244.0.0/32', network: ['10.244.0.0/16'], mtu: 1420 });
 *   node.addPeer({ id: 1, publicKey, endpoint: { address: '198.18.0.11', port: 51820 }, subnets: ['10.244.1.0/24'] });
 */
import { startDataPlane, type DataPlane, type DataPlaneOptions } from '../dataplane/dataplane.js';
import { configureTun } from '../host/link.js';
import { WireGuardDevice, type Logger, type WireGuardPeerConfig } from './device.js';
import type { Timing } from './timers.js';
import { publicKeyOf } from './primitives.js';

export const WIREGUARD_DEFAULT_PORT = 51820;
/** TUN MTU = underlay MTU − this (IPv4 underlay: 20 IP + 8 UDP + 16 header + 16 tag). */
export const WIREGUARD_OVERHEAD_IPV4 = 60;
export const WIREGUARD_OVERHEAD_IPV6 = 80;

export interface EncryptedNodeOptions {
  privateKey: Uint8Array;
  /** TUN address, e.g. the lease's first address: 10.244.3.0/32 */
  address: string;
  /** overlay networks routed into the TUN */
  network: string[];
  mtu: number;
  tunName?: string;
  /** /run/netns/NAME: run the data plane's fds there; netnsName for `ip -n` */
  netns?: string;
  netnsName?: string;
  bindAddress?: string;
  port?: number;
  queues?: number;
  /** kernel offloads (DataPlaneOptions.offload); default: all the kernel accepts */
  offload?: DataPlaneOptions['offload'];
  timing?: Partial<Timing>;
  /** the network's optional PSK (config `Backend.PSK`), used with every peer */
  presharedKey?: Uint8Array;
  /** config `Backend.PersistentKeepaliveInterval`, seconds → ms; 0 = off */
  persistentKeepaliveMs?: number;
  /** DeviceOptions.initiateOnStartMs: initiate to peers added this soon after start (default off) */
  initiateOnStartMs?: number;
  logger?: Logger;
}

export interface EncryptedPeer extends WireGuardPeerConfig {
  /** lease subnets of this peer: routed to it, and the only inner sources accepted from it */
  subnets: string[];
}

export interface EncryptedNode {
  readonly dataPlane: DataPlane;
  readonly device: WireGuardDevice;
  readonly port: number;
  addPeer(p: EncryptedPeer): void;
  removePeer(id: number, subnets: string[]): void;
  stop(): void;
}

export async function startEncryptedNode(o: EncryptedNodeOptions): Promise<EncryptedNode> {
  let device: WireGuardDevice | undefined;
  const dataPlane = startDataPlane({
    tunName: o.tunName ?? 'tulle0',
    netns: o.netns,
    bindAddress: o.bindAddress,
    port: o.port ?? WIREGUARD_DEFAULT_PORT,
    mtu: o.mtu,
    queues: o.queues,
    offload: o.offload,
    encrypted: true,
    publicKey: publicKeyOf(o.privateKey),
    rekeyAfterMs: o.timing?.rekeyAfterTimeMs,
    rejectAfterMs: o.timing?.rejectAfterTimeMs,
    onEvents: () => device?.onEvents(),
  });
  try {
    device = new WireGuardDevice({ privateKey: o.privateKey, dataPlane, timing: o.timing, logger: o.logger, initiateOnStartMs: o.initiateOnStartMs });
    await configureTun({ name: dataPlane.tunName, netnsName: o.netnsName, addresses: [o.address], mtu: o.mtu, routes: o.network });
  } catch (e) {
    dataPlane.stop();
    throw e;
  }
  device.start();
  device.onEvents(); // anything that arrived before the device existed
  const dev = device;
  return {
    dataPlane,
    device: dev,
    port: dataPlane.port,
    addPeer(p) {
      dev.addPeer({
        presharedKey: o.presharedKey,
        persistentKeepaliveMs: o.persistentKeepaliveMs,
        ...p,
      });
      dataPlane.apply(p.subnets.map((subnet) => ({ op: 'setRoute' as const, subnet, peer: p.id })));
    },
    removePeer(id, subnets) {
      dataPlane.apply(subnets.map((subnet) => ({ op: 'deleteRoute' as const, subnet })));
      dev.removePeer(id);
    },
    stop() {
      dev.stop();
      dataPlane.stop();
    },
  };
}
