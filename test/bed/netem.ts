/**
 * Impairments on the underlay of a bed: `tc netem` on the bridge port that leads to a node (so
 * it acts on what that node receives), and lower-MTU hops. Only UDP is impaired — the overlay
 * (tulle's datagrams, handshakes included); etcd's TCP to the node passes untouched, so a test
 * of the data plane is not also a test of etcd under loss:
 *
 *   root prio (every priority → band 2) ── 1:2  unimpaired (TCP to etcd, ARP, ...)
 *                                      └─ 1:3  netem  ← u32 filter: ip protocol 17
 */
import { run } from '../../src/host/exec.js';
import { UNDERLAY_LEN, UNDERLAY_PREFIX, type Bed, type BedNode } from './bed.js';

/** The name of the veth end in the underlay namespace whose peer is the node's eth0. */
export async function underlayPort(bed: Bed, node: BedNode): Promise<string> {
  const [eth0] = JSON.parse((await run('ip', ['-j', '-n', node.ns, 'link', 'show', 'eth0'])).stdout) as { link_index: number }[];
  const links = JSON.parse((await run('ip', ['-j', '-n', bed.underlayNs, 'link', 'show'])).stdout) as { ifindex: number; ifname: string }[];
  const port = links.find((l) => l.ifindex === eth0!.link_index);
  if (!port) throw new Error(`no underlay port for ${node.ns}`);
  return port.ifname;
}

/** Applies netem (e.g. ['loss', '10%']) to UDP on its way to `node`; replaces any earlier impairment. */
export async function impairUdpTo(bed: Bed, node: BedNode, netem: readonly string[]): Promise<void> {
  const dev = await underlayPort(bed, node);
  const tc = (args: string[]) => run('ip', ['netns', 'exec', bed.underlayNs, 'tc', ...args]);
  await tc(['qdisc', 'del', 'dev', dev, 'root']).catch(() => undefined);
  await tc(['qdisc', 'add', 'dev', dev, 'root', 'handle', '1:', 'prio', 'bands', '3', 'priomap', ...Array(16).fill('1')]);
  await tc(['qdisc', 'add', 'dev', dev, 'parent', '1:3', 'handle', '30:', 'netem', 'limit', '10000', ...netem]);
  await tc(['filter', 'add', 'dev', dev, 'parent', '1:', 'protocol', 'ip', 'prio', '1', 'u32', 'match', 'ip', 'protocol', '17', '0xff', 'flowid', '1:3']);
}

export async function clearImpairment(bed: Bed, node: BedNode): Promise<void> {
  const dev = await underlayPort(bed, node);
  await run('ip', ['netns', 'exec', bed.underlayNs, 'tc', 'qdisc', 'del', 'dev', dev, 'root']).catch(() => undefined);
}

/**
 * An L2 hop with a lower MTU on the way to `node`: its bridge port. The bridge drops frames
 * longer than a port's MTU without a word (no ICMP: it is not a router) — the black hole that a
 * misconfigured VLAN, tunnel or cloud network makes. Both directions are affected.
 */
export async function setPortMtu(bed: Bed, node: BedNode, mtu: number): Promise<void> {
  await run('ip', ['-n', bed.underlayNs, 'link', 'set', await underlayPort(bed, node), 'mtu', String(mtu)]);
}

/** Kernel counters of a namespace (nstat, absolute values), e.g. TcpInCsumErrors. */
export async function nstat(ns: string, names: readonly string[]): Promise<Record<string, number>> {
  const { stdout } = await run('ip', ['netns', 'exec', ns, 'nstat', '-asz', ...names]);
  const out: Record<string, number> = Object.fromEntries(names.map((n) => [n, 0]));
  for (const line of stdout.split('\n')) {
    const m = /^(\w+)\s+(\d+)/.exec(line);
    if (m && m[1]! in out) out[m[1]!] = Number(m[2]);
  }
  return out;
}

export const FAR_PREFIX = '198.19.0';

/**
 * A node behind a router, for path-MTU tests: a router namespace on the bridge (198.18.0.254)
 * with a second link of MTU `mtu` to a new node namespace (198.19.0.10/24, inside the bed's
 * benchmarking range). Every namespace already on the underlay gets a route to 198.19.0.0/24
 * via the router. The router forwards and, being a router, answers a DF packet too big for the
 * far link with ICMP "fragmentation needed" (the far node's eth0 has the same lower MTU).
 */
export async function addRoutedHost(bed: Bed, name: string, mtu: number): Promise<BedNode> {
  const existing = (await run('ip', ['netns', 'list'])).stdout.split('\n').map((l) => l.split(' ')[0]!)
    .filter((n) => n.startsWith(`${bed.id}-`) && n !== bed.underlayNs);
  const router = await bed.addHost(`${name}rt`, 254);
  // addHost attaches to the bridge; the far node then leaves it for a link to the router
  const far = await bed.addHost(name, 200);
  await run('ip', ['-n', far.ns, 'link', 'del', 'eth0']);
  await run('ip', ['-n', router.ns, 'link', 'add', 'eth1', 'mtu', String(mtu), 'type', 'veth', 'peer', 'name', 'eth0', 'mtu', String(mtu), 'netns', far.ns]);
  await run('ip', ['-n', router.ns, 'addr', 'add', `${FAR_PREFIX}.1/24`, 'dev', 'eth1']);
  await run('ip', ['-n', router.ns, 'link', 'set', 'eth1', 'up']);
  await run('ip', ['netns', 'exec', router.ns, 'sysctl', '-qw', 'net.ipv4.ip_forward=1']);
  const farIp = `${FAR_PREFIX}.10`;
  await run('ip', ['-n', far.ns, 'addr', 'add', `${farIp}/24`, 'dev', 'eth0']);
  await run('ip', ['-n', far.ns, 'link', 'set', 'eth0', 'up']);
  await run('ip', ['-n', far.ns, 'route', 'add', `${UNDERLAY_PREFIX}.0/${UNDERLAY_LEN}`, 'via', `${FAR_PREFIX}.1`]);
  for (const ns of existing) {
    if (ns === router.ns || ns === far.ns) continue;
    await run('ip', ['-n', ns, 'route', 'add', `${FAR_PREFIX}.0/24`, 'via', router.underlayIp]).catch(() => undefined);
  }
  return { ...far, underlayIp: farIp };
}
