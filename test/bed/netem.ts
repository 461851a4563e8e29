/**
 * Impairments on the underlay of a bed. This machine's kernel has no sch_netem (nor prio,
 * fq_codel, ...), so `tc netem` is done in userspace: a node can sit behind an L2 relay
 * (test/bed/impair-relay.py on AF_PACKET sockets) that forwards every frame between its eth0
 * and the bridge, and drops, duplicates, corrupts, reorders or delays IPv4 UDP frames only —
 * the overlay, tulle's datagrams and handshakes; etcd's TCP passes untouched, so a test of the
 * data plane is not also a test of etcd under loss:
 *
 *   node ns            relay ns (no addresses)             underlay ns
 *   eth0 ──veth── rl0 [impair-relay.py]  eth0 ──veth── pN ─ br0 ─ other nodes, etcd
 *
 * Lower-MTU hops (an L2 port, or a router that sends ICMP frag-needed) need no relay.
 */
import type { ChildProcess } from 'node:child_process';
import path from 'node:path';
import { run } from '../../src/host/exec.js';
import { UNDERLAY_LEN, UNDERLAY_PREFIX, stopProcess, type Bed, type BedNode } from './bed.js';
import { REPO_ROOT } from './daemons.js';
import { waitForOutput } from './proc.js';

/** The name of the veth end in the underlay namespace whose peer is the node's eth0. */
export async function underlayPort(bed: Bed, node: BedNode): Promise<string> {
  const [eth0] = JSON.parse((await run('ip', ['-j', '-n', node.ns, 'link', 'show', 'eth0'])).stdout) as { link_index: number }[];
  const links = JSON.parse((await run('ip', ['-j', '-n', bed.underlayNs, 'link', 'show'])).stdout) as { ifindex: number; ifname: string }[];
  const port = links.find((l) => l.ifindex === eth0!.link_index);
  if (!port) throw new Error(`no underlay port for ${node.ns}`);
  return port.ifname;
}

/** What the relay does to UDP frames, both directions (netem's names). */
export interface Impairment {
  loss?: number;
  duplicate?: number;
  corrupt?: number;
  reorder?: number;
  reorderMs?: number;
  delayMs?: number;
  jitterMs?: number;
  seed?: number;
}

export interface ImpairedHost {
  node: BedNode;
  /** restarts the relay with these impairments (none: a clean wire) */
  set(imp: Impairment): Promise<void>;
  /** the relay's counts since set() or the previous stats() */
  stats(): Promise<Record<string, number>>;
  stop(): Promise<void>;
}

const RELAY = path.join(REPO_ROOT, 'test/bed/impair-relay.py');

/** A node at 198.18.0.OCTET whose link to the bridge runs through an impairment relay. */
export async function addImpairedHost(bed: Bed, name: string, octet: number): Promise<ImpairedHost> {
  const relayNode = await bed.addHost(`${name}x`, 250 - (octet % 50));
  await run('ip', ['-n', relayNode.ns, 'addr', 'flush', 'dev', 'eth0']);
  const node = await bed.addHost(name, octet);
  await run('ip', ['-n', node.ns, 'link', 'del', 'eth0']);
  await run('ip', ['-n', relayNode.ns, 'link', 'add', 'rl0', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', node.ns]);
  await run('ip', ['-n', relayNode.ns, 'link', 'set', 'rl0', 'up']);
  await run('ip', ['-n', node.ns, 'addr', 'add', `${node.underlayIp}/${UNDERLAY_LEN}`, 'dev', 'eth0']);
  await run('ip', ['-n', node.ns, 'link', 'set', 'eth0', 'up']);
  // the relay forwards single frames: no GSO super-frames may reach it from either side
  await run('ip', ['-n', node.ns, 'link', 'set', 'eth0', 'gso_max_segs', '1']);
  await run('ip', ['-n', bed.underlayNs, 'link', 'set', await underlayPort(bed, relayNode), 'gso_max_segs', '1']);
  let proc: ChildProcess | undefined;
  let out = '';
  const stop = async () => {
    if (proc) await stopProcess(proc, 3000);
    proc = undefined;
  };
  const self: ImpairedHost = {
    node,
    async set(imp) {
      await stop();
      const flags = Object.entries({ loss: imp.loss, duplicate: imp.duplicate, corrupt: imp.corrupt, reorder: imp.reorder, 'reorder-ms': imp.reorderMs, 'delay-ms': imp.delayMs, 'jitter-ms': imp.jitterMs, seed: imp.seed })
        .filter(([, v]) => v !== undefined).flatMap(([k, v]) => [`--${k}`, String(v)]);
      // through the bed, so its teardown stops the relay by PID
      const p = bed.spawn(relayNode.ns, 'python3', [RELAY, 'rl0', 'eth0', ...flags]);
      proc = p;
      out = '';
      p.stdout!.on('data', (d: Buffer) => (out += d.toString()));
      await waitForOutput(p, /ready/, 15_000);
    },
    async stats() {
      if (!proc) return {};
      const p = proc;
      const seen = out.length;
      p.kill('SIGUSR1');
      const deadline = Date.now() + 10_000;
      for (;;) {
        const line = out.slice(seen).split('\n').find((l) => l.startsWith('{') && l.endsWith('}'));
        if (line) return JSON.parse(line) as Record<string, number>;
        if (Date.now() > deadline || p.exitCode !== null) throw new Error('the impairment relay did not report its counts');
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    stop,
  };
  await self.set({});
  return self;
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
 * with a second link of MTU `linkMtu` to a new node namespace (198.19.0.10/24, inside the
 * bed's benchmarking range). Every namespace already on the underlay gets a route to
 * 198.19.0.0/24 via the router. The router forwards and, being a router, answers a DF packet
 * too big for the far link with ICMP "fragmentation needed". The far node's own eth0 has
 * `hostMtu` (default 1500: the lower MTU is a hop in the middle, and the far node does not know).
 */
export async function addRoutedHost(bed: Bed, name: string, linkMtu: number, hostMtu = 1500): Promise<BedNode> {
  const existing = (await run('ip', ['netns', 'list'])).stdout.split('\n').map((l) => l.split(' ')[0]!)
    .filter((n) => n.startsWith(`${bed.id}-`) && n !== bed.underlayNs);
  const router = await bed.addHost(`${name}rt`, 254);
  // addHost attaches to the bridge; the far node then leaves it for a link to the router
  const far = await bed.addHost(name, 200);
  await run('ip', ['-n', far.ns, 'link', 'del', 'eth0']);
  await run('ip', ['-n', router.ns, 'link', 'add', 'eth1', 'mtu', String(linkMtu), 'type', 'veth', 'peer', 'name', 'eth0', 'mtu', String(hostMtu), 'netns', far.ns]);
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
