/**
 * The underlay side of this node: which interface, which address other nodes reach us at
 * (--iface / --iface-regex / --iface-can-reach / --public-ip, chosen as flanneld does:
 * iface-match.ts), and its MTU.
 */
import { run } from './exec.js';
import { chooseIface, type IfaceChoice, type IfaceInfo, type Route } from './iface-match.js';
import { linkMtu } from './link.js';

export interface Underlay {
  iface: string;
  publicIp: string;
  mtu: number;
  /** how the interface was found (for the log) */
  by: string;
}

interface AddrInfo {
  ifname: string;
  addr_info: Array<{ family: string; local: string }>;
}

async function interfaces(): Promise<IfaceInfo[]> {
  const list = JSON.parse((await run('ip', ['-j', '-4', 'addr', 'show'])).stdout) as AddrInfo[];
  return list.map((a) => ({ name: a.ifname, addrs: a.addr_info.filter((i) => i.family === 'inet').map((i) => i.local) }));
}

async function routeTo(args: string[]): Promise<Route | undefined> {
  try {
    const r = (JSON.parse((await run('ip', ['-j', '-4', 'route', ...args])).stdout) as Array<{ dev?: string; prefsrc?: string }>)[0];
    return r?.dev ? { dev: r.dev, src: r.prefsrc } : undefined;
  } catch {
    return undefined; // no route: the chooser says what was tried
  }
}

export async function resolveUnderlay(choice: IfaceChoice): Promise<Underlay> {
  const explicit = choice.ifaces.length || choice.ifaceRegexes.length || choice.ifaceCanReach;
  const [all, defaultRoute, canReach] = await Promise.all([
    interfaces(),
    explicit ? undefined : routeTo(['show', 'default']),
    choice.ifaceCanReach ? routeTo(['get', choice.ifaceCanReach]) : undefined,
  ]);
  const c = chooseIface(choice, all, { defaultRoute, canReach });
  return { iface: c.iface, publicIp: c.publicIp, mtu: await linkMtu(c.iface), by: c.by };
}
