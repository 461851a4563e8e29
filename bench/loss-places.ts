/**
 * Where datagrams are lost between two bed nodes: the kernel's and tulle's drop counters at every
 * place a datagram of node 0 → node 1 passes, read before and after a run (bench:udp-loss).
 *
 *   iperf3 client ─▶ [node 0 device TX ring] ─▶ tulle outbound ─▶ node 0 UDP send ─▶ veth/bridge
 *   ─▶ [node 1 UDP socket of the system] ─▶ tulle inbound ─▶ TUN write ─▶ [node 1 iperf3 socket]
 *
 * Counts, not timings: each one is a kernel or tulle counter of datagrams. All but one are per
 * namespace or per device; the machine's softnet backlog drops are global (every namespace, other
 * users of the machine too) and are shown apart, never added in.
 */
import { readFileSync } from 'node:fs';
import type { Bed } from '../test/bed/bed.js';
import type { NodeDevice } from './systems.js';

interface LinkStats { rxPackets: number; rxDropped: number; txPackets: number; txDropped: number }

export interface NodeSnapshot {
  links: Map<string, LinkStats>;
  /** /proc/net/snmp's Udp: line (the namespace's UDP, every socket) */
  udp: Record<string, number>;
  /** drops of every qdisc of the namespace (tc -s qdisc), by device */
  qdiscDrops: Map<string, number>;
  /** drops of the sockets bound to the system's port (/proc/net/udp{,6}, every SO_REUSEPORT one) */
  systemSocketDrops: number;
  counters: Record<string, bigint>;
}

export interface Snapshot {
  nodes: NodeSnapshot[];
  /** every link of the underlay namespace (the bridge and its ports) */
  underlay: Map<string, LinkStats>;
  /** /proc/net/softnet_stat column 2 summed over CPUs: machine-wide */
  softnetDropped: number;
}

function parseLinks(json: string): Map<string, LinkStats> {
  const links = JSON.parse(json) as Array<{ ifname: string; stats64?: { rx: { packets: number; dropped: number }; tx: { packets: number; dropped: number } } }>;
  return new Map(links.map((l) => [l.ifname, {
    rxPackets: l.stats64?.rx.packets ?? 0, rxDropped: l.stats64?.rx.dropped ?? 0,
    txPackets: l.stats64?.tx.packets ?? 0, txDropped: l.stats64?.tx.dropped ?? 0,
  }]));
}

function parseSnmpUdp(snmp: string): Record<string, number> {
  const lines = snmp.split('\n').filter((l) => l.startsWith('Udp: '));
  if (lines.length < 2) throw new Error(`no Udp: lines in /proc/net/snmp: ${snmp.slice(0, 200)}`);
  const keys = lines[0]!.split(/\s+/).slice(1), vals = lines[1]!.split(/\s+/).slice(1).map(Number);
  return Object.fromEntries(keys.map((k, i) => [k, vals[i]!]));
}

/** Sum of the drops column of /proc/net/udp{,6} for sockets bound to `port`. */
export function socketDrops(procNetUdp: string, port: number): number {
  let sum = 0;
  for (const line of procNetUdp.split('\n')) {
    const f = line.trim().split(/\s+/);
    // sl local rem st tx:rx tr:when retr uid timeout inode ref pointer drops
    if (f.length < 13 || !/^\d+:$/.test(f[0]!)) continue;
    const localPort = parseInt(f[1]!.split(':')[1]!, 16);
    if (localPort === port) sum += Number(f[12]);
  }
  return sum;
}

const SEP = '=====';

async function nodeSnapshot(bed: Bed, d: NodeDevice): Promise<NodeSnapshot> {
  const counters = d.counters?.() ?? {};
  const { stdout } = await bed.exec(d.ns, 'sh', ['-c', `cat /proc/net/snmp; echo ${SEP}; cat /proc/net/udp /proc/net/udp6; echo ${SEP}; ip -s -j link show; echo ${SEP}; tc -s -j qdisc show`], 10_000);
  const [snmp, udp, links, qdiscs] = stdout.split(`${SEP}\n`) as [string, string, string, string];
  const qdiscDrops = new Map<string, number>();
  for (const q of JSON.parse(qdiscs) as Array<{ dev: string; drops?: number }>) qdiscDrops.set(q.dev, (qdiscDrops.get(q.dev) ?? 0) + (q.drops ?? 0));
  return { links: parseLinks(links), udp: parseSnmpUdp(snmp), qdiscDrops, systemSocketDrops: socketDrops(udp, d.port), counters };
}

export async function snapshot(bed: Bed, devices: NodeDevice[]): Promise<Snapshot> {
  const nodes = await Promise.all(devices.map((d) => nodeSnapshot(bed, d)));
  const { stdout } = await bed.exec(bed.underlayNs, 'ip', ['-s', '-j', 'link', 'show'], 10_000);
  const softnetDropped = readFileSync('/proc/net/softnet_stat', 'utf8').trim().split('\n')
    .reduce((s, l) => s + parseInt(l.trim().split(/\s+/)[1]!, 16), 0);
  return { nodes, underlay: parseLinks(stdout), softnetDropped };
}

/** The places, in the order a datagram meets them; `counted` ones add up to the loss. */
export const PLACES = [
  { key: 'senderQdisc', title: "node 0: the device's qdisc dropped (tc -s qdisc)", counted: true },
  { key: 'senderDevice', title: "node 0: device TX dropped (the kernel's ring to tulle full; VXLAN: vx0)", counted: true },
  { key: 'outbound', title: 'node 0: tulle outbound drops (outbound_drop_*)', counted: true },
  { key: 'senderUdp', title: 'node 0: UDP SndbufErrors (namespace)', counted: true },
  { key: 'underlay', title: 'underlay: veth/bridge dropped (node eth0s, bridge ports)', counted: true },
  { key: 'receiverSocket', title: "node 1: the system's UDP socket full (drops of its port)", counted: true },
  { key: 'inbound', title: 'node 1: tulle inbound drops (inbound_drop_*, not TUN writes)', counted: true },
  { key: 'tunWrite', title: 'node 1: tulle TUN write errors', counted: true },
  { key: 'receiverDevice', title: 'node 1: device RX dropped', counted: true },
  { key: 'appSocket', title: "node 1: iperf3's socket full (RcvbufErrors − the system's socket)", counted: true },
  { key: 'unaccounted', title: 'not found in any counter (lost − the rows above)', counted: false },
  { key: 'softnet', title: 'machine: softnet backlog dropped (global, all users; not added in)', counted: false },
] as const;
export type PlaceKey = (typeof PLACES)[number]['key'];

/** The stages a datagram passes (counts, not losses): the path's view of the same run. */
export const STAGES = [
  { key: 'sent', title: 'sent by iperf3 (client)' },
  { key: 'read', title: 'read by node 0 (tulle outbound_packets)' },
  { key: 'forwarded', title: 'sent on by node 0 (outbound_sent_packets)' },
  { key: 'arrived', title: 'received by node 1 (inbound_packets)' },
  { key: 'delivered', title: 'written to node 1 TUN (inbound_delivered_packets)' },
  { key: 'received', title: 'received by iperf3 (server)' },
  { key: 'outBatch', title: 'node 0: packets per outbound batch (outbound_packets / outbound_batches)' },
  { key: 'inBatch', title: 'node 1: datagrams per recvmmsg (inbound_udp_datagrams / inbound_batches)' },
  { key: 'tunWrites', title: 'node 1: TUN writes (inbound_tun_writes)' },
] as const;
export type StageKey = (typeof STAGES)[number]['key'];

const sumPrefix = (c: Record<string, bigint>, prefix: string, except: string[] = []) =>
  Object.entries(c).filter(([k]) => k.startsWith(prefix) && !except.includes(k)).reduce((s, [, v]) => s + Number(v), 0);

const linkDelta = (a: Map<string, LinkStats>, b: Map<string, LinkStats>, name: string, k: keyof LinkStats) =>
  (b.get(name)?.[k] ?? 0) - (a.get(name)?.[k] ?? 0);

/** Datagrams lost at each place between two snapshots; `lost` and the iperf3 counts from its report. */
export function lossByPlace(a: Snapshot, b: Snapshot, devices: NodeDevice[], iperf: { sent: number; lost: number }): { places: Record<PlaceKey, number>; stages: Partial<Record<StageKey, number>>; drops: Record<string, number> } {
  const [a0, a1] = a.nodes as [NodeSnapshot, NodeSnapshot];
  const [b0, b1] = b.nodes as [NodeSnapshot, NodeSnapshot];
  const [d0, d1] = devices as [NodeDevice, NodeDevice];
  const c = (x: NodeSnapshot, y: NodeSnapshot, name: string) => Number((y.counters[name] ?? 0n) - (x.counters[name] ?? 0n));
  const tulle = d0.counters !== undefined;
  const underlayDrops = [...b.underlay.keys()].reduce((s, n) => s + linkDelta(a.underlay, b.underlay, n, 'txDropped') + linkDelta(a.underlay, b.underlay, n, 'rxDropped'), 0);
  const receiverSocket = b1.systemSocketDrops - a1.systemSocketDrops;
  const places: Record<PlaceKey, number> = {
    senderQdisc: (b0.qdiscDrops.get(d0.dev) ?? 0) - (a0.qdiscDrops.get(d0.dev) ?? 0),
    senderDevice: linkDelta(a0.links, b0.links, d0.dev, 'txDropped'),
    outbound: tulle ? sumPrefix(b0.counters, 'outbound_drop_') - sumPrefix(a0.counters, 'outbound_drop_') : 0,
    senderUdp: (b0.udp.SndbufErrors ?? 0) - (a0.udp.SndbufErrors ?? 0),
    underlay: underlayDrops + linkDelta(a0.links, b0.links, 'eth0', 'txDropped') + linkDelta(a1.links, b1.links, 'eth0', 'rxDropped'),
    receiverSocket,
    inbound: tulle ? sumPrefix(b1.counters, 'inbound_drop_', ['inbound_drop_tun_write_error']) - sumPrefix(a1.counters, 'inbound_drop_', ['inbound_drop_tun_write_error']) : 0,
    tunWrite: tulle ? c(a1, b1, 'inbound_drop_tun_write_error') : 0,
    receiverDevice: linkDelta(a1.links, b1.links, d1.dev, 'rxDropped'),
    appSocket: (b1.udp.RcvbufErrors ?? 0) - (a1.udp.RcvbufErrors ?? 0) - receiverSocket,
    unaccounted: 0,
    softnet: b.softnetDropped - a.softnetDropped,
  };
  const counted = PLACES.filter((p) => p.counted).reduce((s, p) => s + places[p.key], 0);
  places.unaccounted = iperf.lost - counted;
  const stages: Partial<Record<StageKey, number>> = { sent: iperf.sent, received: iperf.sent - iperf.lost };
  if (tulle) {
    stages.read = c(a0, b0, 'outbound_packets');
    stages.forwarded = c(a0, b0, 'outbound_sent_packets');
    stages.arrived = c(a1, b1, 'inbound_packets');
    stages.delivered = c(a1, b1, 'inbound_delivered_packets');
    stages.outBatch = stages.read / Math.max(1, c(a0, b0, 'outbound_batches'));
    stages.inBatch = c(a1, b1, 'inbound_udp_datagrams') / Math.max(1, c(a1, b1, 'inbound_batches'));
    stages.tunWrites = c(a1, b1, 'inbound_tun_writes');
  }
  // tulle's drop counters that moved, by node and name (which reason a row's sum is made of)
  const drops: Record<string, number> = {};
  for (const [i, x, y] of [[0, a0, b0], [1, a1, b1]] as const)
    for (const k of Object.keys(y.counters)) if (k.includes('_drop_') && c(x, y, k)) drops[`node ${i} ${k}`] = c(x, y, k);
  return { places, stages, drops };
}
