/**
 * --ip-masq: masquerade overlay traffic that leaves the Network, in a chain of our own
 * (nat TULLE-POSTRTG, jumped to from POSTROUTING), the same policy as flannel's:
 *   Network → Network           RETURN      (pod to pod: never NAT)
 *   !Network → our subnet       RETURN      (external traffic to our pods keeps its source)
 *   Network → !224.0.0.0/4      MASQUERADE  (pods going out)
 *   !Network → Network          MASQUERADE  (the host talking into the overlay)
 */
import { run } from './exec.js';

const CHAIN = 'TULLE-POSTRTG';
const COMMENT = ['-m', 'comment', '--comment', 'tulle masq'];

export function masqRules(network: string, subnet: string): string[][] {
  return [
    ['-s', network, '-d', network, ...COMMENT, '-j', 'RETURN'],
    ['!', '-s', network, '-d', subnet, ...COMMENT, '-j', 'RETURN'],
    ['-s', network, '!', '-d', '224.0.0.0/4', ...COMMENT, '-j', 'MASQUERADE', '--random-fully'],
    ['!', '-s', network, '-d', network, ...COMMENT, '-j', 'MASQUERADE', '--random-fully'],
  ];
}

const ipt = (...args: string[]) => run('iptables', ['-w', '5', '-t', 'nat', ...args]);

/** Installs (or replaces) the rules; idempotent. */
export async function installMasq(network: string, subnet: string): Promise<void> {
  await ipt('-N', CHAIN).catch(() => undefined); // exists already
  await ipt('-F', CHAIN);
  for (const r of masqRules(network, subnet)) await ipt('-A', CHAIN, ...r);
  const jump = ['POSTROUTING', ...COMMENT, '-j', CHAIN];
  const present = await ipt('-C', ...jump).then(() => true, () => false);
  if (!present) await ipt('-I', ...jump);
}

export async function removeMasq(): Promise<void> {
  await ipt('-D', 'POSTROUTING', ...COMMENT, '-j', CHAIN).catch(() => undefined);
  await ipt('-F', CHAIN).catch(() => undefined);
  await ipt('-X', CHAIN).catch(() => undefined);
}
