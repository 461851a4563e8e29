/**
 * The underlay side of this node: which interface, which address other nodes reach us at
 * (--iface / --iface-regex / --iface-can-reach / --public-ip / --public-ipv6, chosen as flanneld
 * does: iface-match.ts), and its MTU.
 */
import { run } from './exec.js';
import { chooseIface, type IfaceChoice, type IfaceInfo, type Route } from './iface-match.js';
import { linkMtu } from './link.js';

export interface Underlay {
  iface: string;
  /** undefined on an IPv6-only underlay */
  publicIp: string | undefined;
  /** --public-ipv6, else the interface's first global IPv6 address */
  publicIpv6: string | undefined;
  mtu: number;
  /** how the interface was found (for the log) */
  by: string;
}

interface AddrInfo {
  ifname: string;
  addr_info: Array<{ family: string; local: string; scope?: string; deprecated?: boolean; tentative?: boolean }>;
}

async function interfaces(): Promise<IfaceInfo[]> {
  const list = JSON.parse((await run('ip', ['-j', 'addr', 'show'])).stdout) as AddrInfo[];
  return list.map((a) => ({
    name: a.ifname,
    addrs: a.addr_info.filter((i) => i.family === 'inet').map((i) => i.local),
    // global and usable, as flanneld's GetInterfaceIP6Addrs (minus link-local: see iface-match.ts)
    addrs6: a.addr_info.filter((i) => i.family === 'inet6' && i.scope === 'global' && !i.deprecated).map((i) => i.local),
  }));
}

async function routeTo(args: string[], family: 4 | 6 = 4): Promise<Route | undefined> {
  try {
    const r = (JSON.parse((await run('ip', ['-j', `-${family}`, 'route', ...args])).stdout) as Array<{ dev?: string; prefsrc?: string }>)[0];
    return r?.dev ? { dev: r.dev, src: r.prefsrc } : undefined;
  } catch {
    return undefined; // no route: the chooser says what was tried
  }
}

export async function resolveUnderlay(choice: IfaceChoice): Promise<Underlay> {
  const explicit = choice.ifaces.length || choice.ifaceRegexes.length || choice.ifaceCanReach;
  const [all, defaultRoute, defaultRoute6, canReach] = await Promise.all([
    interfaces(),
    explicit ? undefined : routeTo(['show', 'default']),
    explicit ? undefined : routeTo(['show', 'default'], 6),
    choice.ifaceCanReach ? routeTo(['get', choice.ifaceCanReach]) : undefined,
  ]);
  const c = chooseIface(choice, all, { defaultRoute, defaultRoute6, canReach });
  return { iface: c.iface, publicIp: c.publicIp, publicIpv6: c.publicIpv6, mtu: await linkMtu(c.iface), by: c.by };
}
