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
 *       an interface without an IPv4 address does not match — unless nothing with one does:
 *       then the same order once more for an interface with an IPv6 address (an IPv6-only
 *       underlay; flanneld decides by EnableIPv4/EnableIPv6, which tulle reads only later);
 *   the address is the matched one, else the interface's first IPv4 address;
 *   PublicIP is --public-ip, else that address; PublicIPv6 is --public-ipv6, else the
 *   interface's first global IPv6 address (flanneld also takes a link-local one, which cannot
 *   be an endpoint without its scope: tulle does not).
 *
 * Pure: the interface list and the route lookups come in. (flanneld exits when --public-ip is
 * held by no interface and nothing else is given; tulle then uses the default-route interface,
 * for nodes behind NAT.)
 */
import { isIPv4, isIPv6 } from 'node:net';
import { TulleError } from '../util/errors.js';

export interface IfaceInfo {
  name: string;
  /** IPv4 addresses in the kernel's order */
  addrs: readonly string[];
  /** global IPv6 addresses in the kernel's order */
  addrs6?: readonly string[];
}

export interface IfaceChoice {
  ifaces: readonly string[];
  ifaceRegexes: readonly string[];
  ifaceCanReach: string | undefined;
  publicIp: string | undefined;
  /** --public-ipv6 */
  publicIpv6?: string | undefined;
}

export interface Route {
  dev: string;
  src: string | undefined;
}

export interface Routes {
  defaultRoute?: Route | undefined;
  /** the IPv6 default route, for an IPv6-only underlay */
  defaultRoute6?: Route | undefined;
  canReach?: Route | undefined;
}

export interface Chosen {
  iface: string;
  /** the interface address flanneld would use (IfaceAddr); undefined on an IPv6-only interface */
  address: string | undefined;
  publicIp: string | undefined;
  /** --public-ipv6, else the interface's first global IPv6 address */
  publicIpv6: string | undefined;
  /** how it was found, for the log */
  by: string;
}

export function chooseIface(c: IfaceChoice, all: readonly IfaceInfo[], routes: Routes): Chosen {
  try {
    return chooseIn(c, all, routes, 4);
  } catch (e) {
    // nothing with an IPv4 address matched: an IPv6-only underlay, if an interface matches there
    try {
      return chooseIn(c, all, routes, 6);
    } catch {
      throw e;
    }
  }
}

function chooseIn(c: IfaceChoice, all: readonly IfaceInfo[], routes: Routes, family: 4 | 6): Chosen {
  const v6 = (i: IfaceInfo) => i.addrs6 ?? [];
  const done = (i: IfaceInfo | undefined, address: string | undefined, by: string): Chosen | undefined => {
    if (!i) return undefined;
    if (family === 4) {
      // (an IPv6 address that matched the interface names its IPv6 side)
      const given6 = address !== undefined && isIPv6(address) ? address : undefined;
      const a = given6 === undefined && address !== undefined ? address : i.addrs[0];
      return a ? { iface: i.name, address: a, publicIp: c.publicIp ?? a, publicIpv6: c.publicIpv6 ?? given6 ?? v6(i)[0], by } : undefined;
    }
    const a6 = address !== undefined && isIPv6(address) ? address : v6(i)[0];
    return a6 ? { iface: i.name, address: undefined, publicIp: c.publicIp, publicIpv6: c.publicIpv6 ?? a6, by } : undefined;
  };
  const named = (n: string) => all.find((i) => i.name === n);
  const holding = (ip: string) => all.find((i) => i.addrs.includes(ip) || v6(i).includes(ip));

  if (!c.ifaces.length && !c.ifaceRegexes.length && !c.ifaceCanReach) {
    const byIp = c.publicIp ? done(holding(c.publicIp), c.publicIp, '--public-ip') : undefined;
    if (byIp) return byIp;
    const byIp6 = family === 6 && c.publicIpv6 ? done(holding(c.publicIpv6), c.publicIpv6, '--public-ipv6') : undefined;
    if (byIp6) return byIp6;
    const dev = (family === 6 ? (routes.defaultRoute6 ?? routes.defaultRoute) : routes.defaultRoute)?.dev;
    if (!dev) throw new TulleError('ERR_TULLE_IFACE', 'no default route to pick the underlay interface from: pass --iface or --public-ip');
    const r = done(named(dev), undefined, 'default route');
    if (!r) throw new TulleError('ERR_TULLE_IFACE', `the default-route interface ${dev} has no IPv${family} address: pass --iface or --public-ip`);
    return r;
  }
  for (const want of c.ifaces) {
    const r = isIPv4(want) || isIPv6(want) ? done(holding(want), want, `--iface ${want}`) : done(named(want), undefined, `--iface ${want}`);
    if (r) return r;
  }
  for (const re of c.ifaceRegexes) {
    const rx = new RegExp(re);
    for (const i of all) {
      const a = (family === 4 ? i.addrs : v6(i)).find((x) => rx.test(x));
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
  const have = all.map((i) => `${i.name}:[${[...i.addrs, ...v6(i)].join(' ')}]`).join(', ');
  throw new TulleError('ERR_TULLE_IFACE', `no interface with an IPv${family} address matches ${tried.join(', ')} (interfaces: ${have || 'none'})`);
}
