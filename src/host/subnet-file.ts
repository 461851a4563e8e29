/**
 * subnet.env, as flanneld writes it (pkg/subnet WriteSubnetFile) — what the flannel CNI plugin reads:
 *   FLANNEL_NETWORK=10.244.0.0/16          \ when EnableIPv4 (the default)
 *   FLANNEL_SUBNET=10.244.3.1/24           / (first address of the lease, with its length)
 *   FLANNEL_IPV6_NETWORK=fd00:10:244::/56  \ when EnableIPv6
 *   FLANNEL_IPV6_SUBNET=fd00:10:244:3::1/64 /
 *   FLANNEL_MTU=1472
 *   FLANNEL_IPMASQ=false
 * Written atomically: a temp file in the same directory, then rename.
 */
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { firstAddress, leaseSubnets, type LeaseSubnets } from '../lease/lease.js';
import { formatNet, maskNet, parseNet, type Family } from '../util/ip.js';

export interface SubnetEnv {
  /** IPv4 Network and the lease's IPv4 subnet, when EnableIPv4 */
  network?: string | undefined;
  subnet?: string | undefined;
  /** IPv6Network and the lease's IPv6 subnet, when EnableIPv6 */
  ipv6Network?: string | undefined;
  ipv6Subnet?: string | undefined;
  mtu: number;
  ipMasq: boolean;
}

export function formatSubnetEnv(e: SubnetEnv): string {
  let out = '';
  if (e.network !== undefined && e.subnet !== undefined) out += `FLANNEL_NETWORK=${e.network}\nFLANNEL_SUBNET=${firstAddress(e.subnet)}\n`;
  if (e.ipv6Network !== undefined && e.ipv6Subnet !== undefined) {
    out += `FLANNEL_IPV6_NETWORK=${e.ipv6Network}\nFLANNEL_IPV6_SUBNET=${firstAddress(e.ipv6Subnet)}\n`;
  }
  return `${out}FLANNEL_MTU=${e.mtu}\nFLANNEL_IPMASQ=${e.ipMasq}\n`;
}

export async function writeSubnetFile(file: string, e: SubnetEnv): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  try {
    await writeFile(tmp, formatSubnetEnv(e), { mode: 0o644 });
    await rename(tmp, file);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
}

/**
 * The subnets a previous run wrote (FLANNEL_SUBNET=10.244.3.1/24 → 10.244.3.0/24,
 * FLANNEL_IPV6_SUBNET=fd00:10:244:3::1/64 → fd00:10:244:3::/64), if any.
 */
export async function readPreviousSubnet(file: string): Promise<LeaseSubnets | undefined> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    return undefined;
  }
  const v4 = readCidr(text, 'FLANNEL_SUBNET', 4);
  const v6 = readCidr(text, 'FLANNEL_IPV6_SUBNET', 6);
  return v4 === undefined && v6 === undefined ? undefined : leaseSubnets(v4, v6);
}

function readCidr(text: string, key: string, family: Family): string | undefined {
  const m = new RegExp(`^${key}=(\\S+)\\s*$`, 'm').exec(text);
  if (!m) return undefined;
  try {
    return formatNet(maskNet(parseNet(m[1]!, family)));
  } catch {
    return undefined;
  }
}
