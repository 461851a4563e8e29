/**
 * The in-kernel yardstick: a point-to-point VXLAN between two bed nodes, with the same inner MTU
 * as the tulle link it is compared with.
 */
import { run } from '../src/host/exec.js';
import type { BedNode } from '../test/bed/bed.js';

export const VXLAN_SUBNET = '10.244.250';
/** IANA's VXLAN port, the one the kernel's socket listens on */
export const VXLAN_PORT = 4789;

export async function setupVxlan(a: BedNode, b: BedNode, mtu: number): Promise<{ addressOf: (i: 0 | 1) => string }> {
  const pair: Array<[BedNode, BedNode, number]> = [[a, b, 1], [b, a, 2]];
  for (const [self, other, host] of pair) {
    const ip = (...args: string[]) => run('ip', ['-n', self.ns, ...args]);
    await ip('link', 'add', 'vx0', 'type', 'vxlan', 'id', '42', 'dstport', String(VXLAN_PORT), 'local', self.underlayIp, 'remote', other.underlayIp, 'dev', 'eth0');
    await ip('link', 'set', 'vx0', 'mtu', String(mtu), 'up');
    // a /24 more specific than tulle's /16, so both can share the bed
    await ip('addr', 'add', `${VXLAN_SUBNET}.${host}/24`, 'dev', 'vx0');
  }
  return { addressOf: (i) => `${VXLAN_SUBNET}.${i + 1}` };
}
