/**
 * The underlay side of this node: which interface, which address other nodes reach us at
 * (--iface / --public-ip, defaulting like flanneld: the default-route interface and its
 * first IPv4 address), and its MTU.
 */
import { TulleError } from '../util/errors.js';
import { run } from './exec.js';
import { linkMtu } from './link.js';

export interface Underlay {
  iface: string;
  publicIp: string;
  mtu: number;
}

interface AddrInfo {
  ifname: string;
  addr_info: Array<{ family: string; local: string }>;
}

async function addresses(): Promise<AddrInfo[]> {
  return JSON.parse((await run('ip', ['-j', '-4', 'addr', 'show'])).stdout) as AddrInfo[];
}

export async function resolveUnderlay(iface: string | undefined, publicIp: string | undefined): Promise<Underlay> {
  const addrs = await addresses();
  let name = iface;
  if (!name && publicIp) name = addrs.find((a) => a.addr_info.some((i) => i.local === publicIp))?.ifname;
  if (!name) {
    const routes = JSON.parse((await run('ip', ['-j', '-4', 'route', 'show', 'default'])).stdout) as Array<{ dev?: string }>;
    name = routes[0]?.dev;
    if (!name) throw new TulleError('ERR_TULLE_IFACE', 'no default route to pick the underlay interface from: pass --iface or --public-ip');
  }
  const info = addrs.find((a) => a.ifname === name);
  if (!info) throw new TulleError('ERR_TULLE_IFACE', `--iface ${name}: no such interface with an IPv4 address`);
  const ip = publicIp ?? info.addr_info[0]?.local;
  if (!ip) throw new TulleError('ERR_TULLE_IFACE', `--iface ${name} has no IPv4 address: pass --public-ip`);
  return { iface: name, publicIp: ip, mtu: await linkMtu(name) };
}
