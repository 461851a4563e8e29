/**
 * Two real daemons (default flags) on a real etcd, n0 on the underlay bridge and n1 behind an
 * impairment relay (netem.ts), for the impairment matrix and its tests. `transfer()` runs one
 * exact TCP transfer n0 → n1 over the overlay and returns, with the result, what happened on
 * the way: the relay's counts, both nodes' kernel counters and both daemons' inbound drops.
 *
 * Every frame leaves a node's eth0 at most MTU-sized (gso_max_segs 1, as a real NIC puts
 * segments on the wire), so a lower-MTU hop is not bypassed by a GSO super-frame.
 */
import { run } from '../../src/host/exec.js';
import { createBed, type Bed, type BedNode } from './bed.js';
import { startEtcd, type EtcdServer } from './etcd.js';
import { startDaemons, tunAddress, until, type Daemon, type Daemons } from './daemons.js';
import { addImpairedHost, nstat, type ImpairedHost } from './netem.js';
import { tcpTransfer, type TransferResult } from './transfer.js';

export const PREFIX = '/coreos.com/network';
const KERNEL = ['TcpInCsumErrors', 'UdpInCsumErrors', 'IpInHdrErrors', 'IpReasmOKs'] as const;

export interface TransferReport extends TransferResult {
  /** the relay's counts for this transfer (both directions) */
  relay: Record<string, number>;
  /** kernel counter deltas, summed over both nodes */
  kernel: Record<(typeof KERNEL)[number], number>;
  /** inbound drop deltas of both daemons, by reason */
  drops: Record<string, number>;
  /** the receiver's TUN MTU */
  mtu: number;
}

export interface ImpairedPair {
  bed: Bed;
  etcd: EtcdServer;
  ds: Daemons;
  n0: BedNode;
  n1: BedNode;
  relay: ImpairedHost;
  daemons: Daemon[];
  subnets: string[];
  /** stops both daemons and starts them again (after a change of the underlay) */
  restart(): Promise<void>;
  /** one transfer n0 → `to` (default n1) of `bytes`, bounded by `timeoutS` */
  transfer(bytes: number, timeoutS: number, o?: { to?: { node: BedNode; daemon: Daemon; subnet: string }; seed?: string }): Promise<TransferReport>;
  teardown(): Promise<void>;
}

export async function startImpairedPair(mode: 'plain' | 'encrypted', tag = 'imp'): Promise<ImpairedPair> {
  const bed = await createBed({ nodes: 1, tag });
  let etcd: EtcdServer | undefined;
  let ds: Daemons | undefined;
  const teardown = async () => {
    await ds?.destroy();
    await etcd?.destroy();
    await bed.teardown();
  };
  try {
    const etcdNode = await bed.addHost('etcd', 2);
    etcd = await startEtcd({ bed, ns: etcdNode.ns, ip: etcdNode.underlayIp });
    await etcd.etcdctl(['put', `${PREFIX}/config`, JSON.stringify({ Network: '10.244.0.0/16', Backend: { Type: mode === 'plain' ? 'udp' : 'wireguard' } })]);
    const relay = await addImpairedHost(bed, 'n1', 11);
    const n0 = bed.nodes[0]!;
    const n1 = relay.node;
    await run('ip', ['-n', n0.ns, 'link', 'set', 'eth0', 'gso_max_segs', '1']);
    ds = startDaemons(bed, [etcd.endpoint]);
    const daemons: Daemon[] = [];
    const subnets: string[] = [];
    const up = async () => {
      daemons.splice(0, 2, ds!.start(n0), ds!.start(n1));
      subnets.splice(0, 2, ...(await Promise.all(daemons.map((x) => x.readySubnet(60_000)))));
      await until('n0 to reach n1 over the overlay', async () =>
        (await bed.exec(n0.ns, 'ping', ['-n', '-q', '-c', '1', '-W', '1', tunAddress(subnets[1]!)]), true), 60_000, 200);
    };
    await up();
    const pair: ImpairedPair = {
      bed, etcd, ds, n0, n1, relay, daemons, subnets,
      async restart() {
        await ds!.stopAll();
        await up();
      },
      async transfer(bytes, timeoutS, o = {}) {
        const to = o.to ?? { node: n1, daemon: daemons[1]!, subnet: subnets[1]! };
        const pairDaemons = [daemons[0]!, to.daemon];
        const kernel = () => Promise.all([nstat(n0.ns, KERNEL), nstat(to.node.ns, KERNEL)]);
        const metrics = () => Promise.all(pairDaemons.map((x) => ds!.metrics(x)));
        const k0 = await kernel();
        const m0 = await metrics();
        await relay.stats(); // counts from here on
        const r = await tcpTransfer(bed, n0, to.node, tunAddress(to.subnet), bytes, timeoutS, o.seed);
        const k1 = await kernel();
        const m1 = await metrics();
        const relayCounts = await relay.stats();
        const kd = Object.fromEntries(KERNEL.map((k) => [k, k1[0]![k]! - k0[0]![k]! + k1[1]![k]! - k0[1]![k]!])) as TransferReport['kernel'];
        const drops: Record<string, number> = {};
        for (let i = 0; i < 2; i++) {
          for (const [k, v] of m1[i]!) {
            const dv = v - (m0[i]!.get(k) ?? 0);
            const reason = /^tulle_drops_total\{direction="inbound",reason="(\w+)"\}/.exec(k)?.[1];
            if (reason && dv > 0) drops[reason] = (drops[reason] ?? 0) + dv;
          }
        }
        const mtu = Number((await ds!.health(to.daemon)).mtu);
        return { ...r, relay: relayCounts, kernel: kd, drops, mtu };
      },
      teardown,
    };
    return pair;
  } catch (e) {
    await teardown();
    throw e;
  }
}
