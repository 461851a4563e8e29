/**
 * A static plain-mode mesh on a test bed, programmed directly (no etcd): node i owns
 * 10.244.i.0/24, its TUN carries 10.244.i.0/32 and a route for 10.244.0.0/16. Used by the
 * integration tests and the benchmark.
 */
import { startDataPlane, type DataPlane, type DataPlaneOptions } from '../../src/dataplane/dataplane.js';
import type { Command } from '../../src/dataplane/commands.js';
import { configureTun } from '../../src/host/link.js';
import type { Bed, BedNode } from './bed.js';

export const OVERLAY_NETWORK = '10.244.0.0/16';
/** underlay veth MTU 1500 - 28 (IPv4 + UDP): flannel's UDP backend MTU */
export const PLAIN_MTU = 1472;

export const overlayAddress = (i: number) => `10.244.${i}.0`;
export const overlaySubnet = (i: number) => `10.244.${i}.0/24`;

export interface MeshNode {
  node: BedNode;
  index: number;
  dp: DataPlane;
  address: string;
}

export interface Mesh {
  nodes: MeshNode[];
  stop(): void;
}

export function peerCommands(nodes: readonly { index: number; node: BedNode }[], self: number, port = 8285): Command[] {
  return nodes
    .filter((n) => n.index !== self)
    .flatMap((n): Command[] => [
      { op: 'setPeer', peer: n.index, address: n.node.underlayIp, port },
      { op: 'setRoute', subnet: overlaySubnet(n.index), peer: n.index },
    ]);
}

export async function startStaticMesh(
  bed: Bed,
  opts: Partial<DataPlaneOptions> & { nodes?: BedNode[] } = {},
): Promise<Mesh> {
  const mtu = opts.mtu ?? PLAIN_MTU;
  const mesh: MeshNode[] = [];
  const stop = () => mesh.forEach((m) => m.dp.stop());
  try {
    for (const [index, node] of (opts.nodes ?? bed.nodes).entries()) {
      const dp = startDataPlane({ ...opts, netns: node.nsPath, bindAddress: node.underlayIp, mtu });
      mesh.push({ node, index, dp, address: overlayAddress(index) });
      await configureTun({ name: dp.tunName, netnsName: node.ns, addresses: [`${overlayAddress(index)}/32`], mtu, routes: [OVERLAY_NETWORK] });
    }
    for (const m of mesh) m.dp.apply(peerCommands(mesh, m.index));
  } catch (e) {
    stop();
    throw e;
  }
  return { nodes: mesh, stop };
}
