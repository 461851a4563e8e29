/** Moves the TUN's address when the node's subnet changes after a re-acquire. */
import { run } from './exec.js';

export async function replaceTunAddress(tun: string, oldAddress: string | undefined, newAddress: string): Promise<void> {
  await run('ip', ['addr', 'replace', newAddress, 'dev', tun]);
  if (oldAddress && oldAddress !== newAddress) await run('ip', ['addr', 'del', oldAddress, 'dev', tun]).catch(() => undefined);
}
