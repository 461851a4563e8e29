/**
 * tulle's own state across restarts (CBOR in <state-dir>/state.cbor): the subnet it held, so a
 * restarted node asks for the same one. Unreadable state is ignored, never fatal.
 */
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { decode, encode } from 'cbor-x';

export interface NodeState {
  network: string;
  subnet: string;
  publicIp: string;
}

const FILE = 'state.cbor';

export async function loadState(dir: string): Promise<NodeState | undefined> {
  try {
    const v = decode(await readFile(path.join(dir, FILE))) as Partial<NodeState>;
    if (typeof v?.subnet === 'string' && typeof v.network === 'string' && typeof v.publicIp === 'string') {
      return { network: v.network, subnet: v.subnet, publicIp: v.publicIp };
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
