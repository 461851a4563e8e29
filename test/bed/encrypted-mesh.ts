/**
 * A static encrypted-mode mesh on a test bed, programmed directly (no etcd): node i owns
 * 10.244.i.0/24, its TUN carries 10.244.i.0/32 and a route for 10.244.0.0/16, every pair of
 * nodes is a WireGuard peering. With `handshake: true` (default) every pair completes a
 * handshake before this returns, so sessions are installed in both directions. Used by the
 * integration tests and the benchmark (encrypted rows). The outer packet is 60 bytes longer than
 * the inner one (IPv4 underlay): on the bed's 1500-byte veths the inner MTU must be ≤ 1440.
 */
import { generateKeyPair } from '../../src/wireguard/primitives.js';
import { startEncryptedNode, type EncryptedNode, WIREGUARD_DEFAULT_PORT, WIREGUARD_OVERHEAD_IPV4 } from '../../src/wireguard/encrypted-node.js';
import type { Timing } from '../../src/wireguard/timers.js';
import type { DataPlane, DataPlaneOptions } from '../../src/dataplane/dataplane.js';
import type { Bed, BedNode } from './bed.js';
import { OVERLAY_NETWORK, overlayAddress, overlaySubnet } from './mesh.js';
import { pollUntil } from './proc.js';

/** underlay veth MTU 1500 − 60: flannel's wireguard backend MTU for an IPv4 underlay */
export const ENCRYPTED_MTU = 1500 - WIREGUARD_OVERHEAD_IPV4;

export interface EncryptedMeshNode {
  node: BedNode;
  index: number;
  enc: EncryptedNode;
  /** = enc.dataPlane, so code written for startStaticMesh's nodes (n.dp) works unchanged */
  dp: DataPlane;
  publicKey: Uint8Array;
  address: string;
}

export interface EncryptedMesh {
  nodes: EncryptedMeshNode[];
  stop(): void;
}

export async function startEncryptedMesh(
  bed: Bed,
  opts: { nodes?: BedNode[]; mtu?: number; queues?: number; offload?: DataPlaneOptions['offload']; timing?: Partial<Timing>; handshake?: boolean } = {},
): Promise<EncryptedMesh> {
  const mtu = opts.mtu ?? ENCRYPTED_MTU;
  const mesh: EncryptedMeshNode[] = [];
  const stop = () => mesh.forEach((m) => m.enc.stop());
  try {
    for (const [index, node] of (opts.nodes ?? bed.nodes).entries()) {
      const keys = generateKeyPair();
      const enc = await startEncryptedNode({
        privateKey: keys.privateKey,
        address: `${overlayAddress(index)}/32`,
        network: [OVERLAY_NETWORK],
        mtu,
        netns: node.nsPath,
        netnsName: node.ns,
        bindAddress: node.underlayIp,
        port: WIREGUARD_DEFAULT_PORT,
        queues: opts.queues,
        offload: opts.offload,
        timing: opts.timing,
      });
      mesh.push({ node, index, enc, dp: enc.dataPlane, publicKey: keys.publicKey, address: overlayAddress(index) });
    }
    for (const m of mesh)
      for (const o of mesh)
        if (o !== m)
          m.enc.addPeer({
            id: o.index,
            publicKey: o.publicKey,
            endpoint: { address: o.node.underlayIp, port: WIREGUARD_DEFAULT_PORT },
            subnets: [overlaySubnet(o.index)],
          });
    if (opts.handshake ?? true) {
      for (const m of mesh) for (const o of mesh) if (o.index > m.index) m.enc.device.initiate(o.index);
      // node i initiates to every higher index; the initiator holds a current session at once,
      // the responder's becomes current with the initiator's first (keepalive) packet: wait until
      // node i has received one from each of the i lower nodes
      await pollUntil(
        () =>
          mesh.every(
            (m) =>
              (m.enc.dataPlane.counters().inbound_wg_keepalives ?? 0n) >= BigInt(m.index) &&
              m.enc.device.counters.sessions_installed >= mesh.length - 1,
          ) || undefined,
        'handshakes between every pair',
      );
    }
  } catch (e) {
    stop();
    throw e;
  }
  return { nodes: mesh, stop };
}
