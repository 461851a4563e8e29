/**
 * tulle's own state across restarts (CBOR in <state-dir>/state.cbor): the subnets it held, so a
 * restarted node asks for the same ones. Unreadable state is ignored, never fatal.
 */
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { decode, encode } from 'cbor-x';

export interface NodeState {
  /** the networks the subnets were leased in ("" for a family that was off) */
  network: string;
  /** Lease.subnet: the IPv4 subnet, or the IPv6 one of an IPv6-only lease */
  subnet: string;
  publicIp: string;
  ipv6Network?: string | undefined;
  ipv6Subnet?: string | undefined;
}

const FILE = 'state.cbor';

export async function loadState(dir: string): Promise<NodeState | undefined> {
  try {
    const v = decode(await readFile(path.join(dir, FILE))) as Partial<NodeState>;
    if (typeof v?.subnet === 'string' && typeof v.network === 'string' && typeof v.publicIp === 'string') {
      const s: NodeState = { network: v.network, subnet: v.subnet, publicIp: v.publicIp };
      if (typeof v.ipv6Network === 'string') s.ipv6Network = v.ipv6Network;
      if (typeof v.ipv6Subnet === 'string') s.ipv6Subnet = v.ipv6Subnet;
      return s;
    }
  } catch {
    /* missing or unreadable: start fresh */
  }
  return undefined;
}

export async function saveState(dir: string, s: NodeState): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const tmp = path.join(dir, `${FILE}.${process.pid}.tmp`);
  await writeFile(tmp, encode(s), { mode: 0o600 });
  await rename(tmp, path.join(dir, FILE));
}
