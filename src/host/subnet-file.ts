/**
 * subnet.env, as flannel writes it (design.md §3) — what the flannel CNI plugin reads:
 *   FLANNEL_NETWORK=10.244.0.0/16
 *   FLANNEL_SUBNET=10.244.3.1/24      (first address of the lease, with its length)
 *   FLANNEL_MTU=1472
 *   FLANNEL_IPMASQ=false
 * Written atomically: a temp file in the same directory, then rename.
 */
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { firstAddress } from '../lease/lease.js';
import { formatNet4, ip4ToInt, net4Mask } from '../util/ip4.js';

export interface SubnetEnv {
  network: string;
  subnet: string;
  mtu: number;
  ipMasq: boolean;
}

export function formatSubnetEnv(e: SubnetEnv): string {
  return `FLANNEL_NETWORK=${e.network}\nFLANNEL_SUBNET=${firstAddress(e.subnet)}\nFLANNEL_MTU=${e.mtu}\nFLANNEL_IPMASQ=${e.ipMasq}\n`;
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

/** The subnet a previous run wrote (FLANNEL_SUBNET=10.244.3.1/24 → 10.244.3.0/24), if any. */
export async function readPreviousSubnet(file: string): Promise<string | undefined> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch {
    return undefined;
  }
  const m = /^FLANNEL_SUBNET=(\d+\.\d+\.\d+\.\d+)\/(\d+)\s*$/m.exec(text);
  if (!m) return undefined;
  try {
    const len = Number(m[2]);
    return formatNet4({ base: (ip4ToInt(m[1]!) & net4Mask(len)) >>> 0, len });
  } catch {
    return undefined;
  }
}
