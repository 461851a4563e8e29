/**
 * Which underlay interface and address to use, as flanneld picks them (its ipmatch package):
 *
 *   no --iface/--iface-regex/--iface-can-reach:
 *       --public-ip's interface if one holds it, else the default-route interface
 *   else, first match wins:
 *       each --iface in order: an address (the interface holding it, that address) or a name;
 *       then each --iface-regex: the first interface with an IPv4 address it matches (that
 *       address), else the first interface whose name it matches;
 *       then --iface-can-reach: the interface and source address of the route to it;
 *       an interface without an IPv4 address does not match.
 *   the address is the matched one, else the interface's first IPv4 address;
 *   PublicIP is --public-ip, else that address.
 *
 * Pure: the interface list and the route lookups come in. (flanneld exits when --public-ip is
 * held by no interface and nothing else is given; tulle then uses the default-route interface,
 * for nodes behind NAT.)
 */
import { isIPv4 } from 'node:net';
import { TulleError } from '../util/errors.js';

export interface IfaceInfo {
  name: string;
  /** IPv4 addresses in the kernel's order */
  addrs: readonly string[];
}

export interface IfaceChoice {
  ifaces: readonly string[];
  ifaceRegexes: readonly string[];
  ifaceCanReach: string | undefined;
  publicIp: string | undefined;
}

export interface Route {
  dev: string;
  src: string | undefined;
}

export interface Chosen {
  iface: string;
  /** the interface address flanneld would use (IfaceAddr) */
  address: string;
  publicIp: string;
  /** how it was found, for the log */
  by: string;
}

export function chooseIface(c: IfaceChoice, all: readonly IfaceInfo[], routes: { defaultRoute?: Route | undefined; canReach?: Route | undefined }): Chosen {
  const done = (i: IfaceInfo | undefined, address: string | undefined, by: string): Chosen | undefined => {
    const a = address ?? i?.addrs[0];
    return i && a ? { iface: i.name, address: a, publicIp: c.publicIp ?? a, by } : undefined;
  };
  const named = (n: string) => all.find((i) => i.name === n);
  const holding = (ip: string) => all.find((i) => i.addrs.includes(ip));

  if (!c.ifaces.length && !c.ifaceRegexes.length && !c.ifaceCanReach) {
    const byIp = c.publicIp ? done(holding(c.publicIp), c.publicIp, '--public-ip') : undefined;
    if (byIp) return byIp;
    const dev = routes.defaultRoute?.dev;
    if (!dev) throw new TulleError('ERR_TULLE_IFACE', 'no default route to pick the underlay interface from: pass --iface or --public-ip');
    const r = done(named(dev), undefined, 'default route');
    if (!r) throw new TulleError('ERR_TULLE_IFACE', `the default-route interface ${dev} has no IPv4 address: pass --iface or --public-ip`);
    return r;
  }
  for (const want of c.ifaces) {
    const r = isIPv4(want) ? done(holding(want), want, `--iface ${want}`) : done(named(want), undefined, `--iface ${want}`);
    if (r) return r;
  }
  for (const re of c.ifaceRegexes) {
    const rx = new RegExp(re);
    for (const i of all) {
      const a = i.addrs.find((x) => rx.test(x));
      if (a) return done(i, a, `--iface-regex ${re}`)!;
    }
    const r = done(all.find((i) => rx.test(i.name)), undefined, `--iface-regex ${re}`);
    if (r) return r;
  }
  if (c.ifaceCanReach && routes.canReach) {
    const r = done(named(routes.canReach.dev), routes.canReach.src, `--iface-can-reach ${c.ifaceCanReach}`);
    if (r) return r;
  }
  const tried = [...c.ifaces.map((x) => `--iface ${x}`), ...c.ifaceRegexes.map((x) => `--iface-regex ${x}`), ...(c.ifaceCanReach ? [`--iface-can-reach ${c.ifaceCanReach}`] : [])];
  const have = all.map((i) => `${i.name}:[${i.addrs.join(' ')}]`).join(', ');
  throw new TulleError('ERR_TULLE_IFACE', `no interface with an IPv4 address matches ${tried.join(', ')} (interfaces: ${have || 'none'})`);
}
