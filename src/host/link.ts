/**
 * Host side of the TUN: address, MTU, up, and the route for the whole overlay network
 * (design.md §4). Every call can target a network namespace (ip -n NAME) for tests.
 */
import { run } from './exec.js';

/**
 * The TUN's transmit ring (kernel -> tulle). The kernel drops, not queues, when it is full; at
 * the default 500 packets a single TCP stream lost ~4% of its packets there (TX dropped on the
 * TUN, TcpRetransSegs on the sender); 2000 measured zero drops with no throughput cost.
 */
export const TUN_TX_QUEUE_PACKETS = 2000;

export interface TunSetup {
  name: string;
  /** ip -n NETNS, or undefined for our own namespace */
  netnsName?: string | undefined;
  /** e.g. 10.244.3.0/32 (and fd00:10:244:3::/128 in dual stack): the lease's addresses */
  addresses: string[];
  mtu: number;
  /** overlay networks routed into the TUN, e.g. 10.244.0.0/16 and fd00:10:244::/56 */
  routes: string[];
}

function ip(netnsName: string | undefined, ...args: string[]) {
  return run('ip', netnsName ? ['-n', netnsName, ...args] : args);
}

export async function configureTun(s: TunSetup): Promise<void> {
  for (const a of s.addresses) await ip(s.netnsName, 'addr', 'replace', a, 'dev', s.name);
  await ip(s.netnsName, 'link', 'set', 'dev', s.name, 'mtu', String(s.mtu), 'txqueuelen', String(TUN_TX_QUEUE_PACKETS), 'up');
  for (const r of s.routes) await ip(s.netnsName, 'route', 'replace', r, 'dev', s.name);
}

export async function removeRoutes(s: Pick<TunSetup, 'name' | 'netnsName' | 'routes'>): Promise<void> {
  for (const r of s.routes) await ip(s.netnsName, 'route', 'del', r, 'dev', s.name).catch(() => undefined);
}

/** MTU of an interface, read from sysfs of the given namespace. */
export async function linkMtu(name: string, netnsName?: string): Promise<number> {
  const { stdout } = await ip(netnsName, '-j', 'link', 'show', 'dev', name);
  const parsed = JSON.parse(stdout) as Array<{ mtu: number }>;
  return parsed[0]!.mtu;
}
