/**
 * One pod-path scenario on a cluster: three `tulle run` daemons (real etcd, the flags under
 * test), a pod per node from the real CNI plugins, and the checks every scenario shares —
 * pod ↔ pod ping across nodes, an exact TCP transfer, and CNI DEL leaving nothing behind.
 */
import { readdirSync } from 'node:fs';
import { stopProcess, type BedNode } from '../bed/bed.js';
import { expect } from 'vitest';
import { until, type Cluster, type Daemon } from '../integration/cluster.js';
import { addPod, tcpTransfer, type Pod } from './pods.js';

export interface Scenario {
  ds: Daemon[];
  subnets: string[];
  pods: Pod[];
}

export async function startScenario(
  c: Cluster, prefix: string, config: string, flags: string[], o: { nodes?: BedNode[]; env?: NodeJS.ProcessEnv } = {},
): Promise<Scenario> {
  await c.etcd.etcdctl(['put', `${prefix}/config`, config]);
  const ds = (o.nodes ?? c.bed.nodes).map((n) => c.startDaemon(n, [`--etcd-prefix=${prefix}`, ...flags], o.env));
  const subnets = await Promise.all(ds.map((d) => d.readySubnet(120_000)));
  const others = ds.length - 1;
  // a dual-stack lease is two routes; with wireguard's default Mode ("separate") also two peers
  const net = (() => {
    try {
      return JSON.parse(config) as { EnableIPv4?: boolean; EnableIPv6?: boolean };
    } catch {
      return {};
    }
  })();
  const perNode = net.EnableIPv6 && net.EnableIPv4 !== false ? 2 : 1;
  const allPeers = (n: unknown) => n === others || (perNode === 2 && n === 2 * others);
  await Promise.all(ds.map((d) => d.waitLog((l) => (l.msg === 'node ready' && allPeers(l.peers)) || (l.msg === 'peers updated' && (l.routes === others * perNode || allPeers(l.peers))), 120_000)));
  const pods: Pod[] = [];
  for (const [i, d] of ds.entries()) pods.push(await addPod(c.bed, d.node, `${prefix.replace(/\W/g, '')}p${i}`, `${d.dir}/subnet.env`, `${d.dir}/ipam`));
  livePods.push(...pods);
  return { ds, subnets, pods };
}

/** pods not yet deleted: a failed scenario's are deleted by resetNodes */
const livePods: Pod[] = [];

export async function ping(c: Cluster, ns: string, to: string, count = 1, waitS = 1): Promise<boolean> {
  return c.bed.exec(ns, 'ping', ['-n', '-q', '-c', String(count), '-W', String(waitS), to], (count + waitS + 5) * 1000).then(() => true, () => false);
}

/** Every pod pings every pod on the other nodes (polled: peers and handshakes may still settle). */
export async function expectPodMesh(c: Cluster, pods: Pod[]): Promise<void> {
  const pairs = pods.flatMap((a) => pods.filter((b) => b.node !== a.node).map((b) => [a, b] as const));
  await until('every pod to ping every other pod', async () => (await Promise.all(pairs.map(([a, b]) => ping(c, a.ns, b.ip)))).every(Boolean), 30_000, 200);
}

export async function expectExactTransfer(c: Cluster, from: Pod, to: Pod, bytes = 8 << 20): Promise<void> {
  const r = await tcpTransfer(c.bed, from, to, bytes);
  expect(r.received).toBe(r.sent);
  expect(r.sent).toMatch(new RegExp(`^[0-9a-f]{64} ${bytes}$`));
}

/** CNI DEL for every pod; then no veth on the bridge, no IPAM allocation, no CNI iptables chain. */
export async function delPodsLeavingNothing(c: Cluster, s: Scenario): Promise<void> {
  for (const p of s.pods) {
    await p.del();
    livePods.splice(livePods.indexOf(p), 1);
  }
  for (const [i, p] of s.pods.entries()) {
    const node: BedNode = p.node;
    expect((await c.bed.exec(node.ns, 'ip', ['-o', 'link', 'show', 'master', 'cni0'])).stdout.trim()).toBe('');
    expect(await c.bed.exec(node.ns, 'ip', ['link', 'show', p.hostVeth]).then(() => 'present', () => 'gone')).toBe('gone');
    expect(readdirSync(`${s.ds[i]!.dir}/ipam/cbr0`)).not.toContain(p.ip);
    expect((await c.bed.exec(node.ns, 'iptables-save', [])).stdout).not.toMatch(/CNI-/);
    expect(await c.bed.exec(p.ns, 'ip', ['link', 'show', 'eth0']).then(() => 'present', () => 'gone')).toBe('gone');
    // the bridge keeps its gateway address, as on a flannel host
    const gw = s.subnets[i]!.replace(/\.0\/(\d+)$/, '.1/$1');
    expect((await c.bed.exec(node.ns, 'ip', ['-o', '-4', 'addr', 'show', 'dev', 'cni0'])).stdout).toContain(`inet ${gw}`);
  }
}

/** SIGTERM every daemon (exit 0), then remove the bridge so the next scenario starts clean. */
export async function stopScenario(c: Cluster, s: Scenario): Promise<void> {
  for (const d of s.ds) d.proc.kill('SIGTERM');
  for (const d of s.ds) expect(await d.exit).toBe(0);
  for (const d of s.ds) await c.bed.exec(d.node.ns, 'ip', ['link', 'del', 'cni0']).catch(() => undefined);
}

/** Stops every daemon of the cluster still running (after a failed test), waiting for its exit. */
export async function stopDaemons(c: Cluster): Promise<void> {
  await Promise.all(c.daemons.filter((d) => d.proc.exitCode === null && d.proc.signalCode === null).map((d) => stopProcess(d.proc, 10_000)));
}

/** After a failed scenario: no daemon left running, no bridge left with an old address. */
export async function resetNodes(c: Cluster): Promise<void> {
  await stopDaemons(c);
  for (const p of livePods.splice(0)) await p.del().catch(() => undefined);
  for (const n of c.bed.nodes) {
    await c.bed.exec(n.ns, 'ip', ['link', 'del', 'cni0']).catch(() => undefined);
    const veths = (await c.bed.exec(n.ns, 'ip', ['-o', 'link', 'show', 'type', 'veth'])).stdout.match(/^\d+: (veth[^@:]+)/gm) ?? [];
    for (const v of veths) await c.bed.exec(n.ns, 'ip', ['link', 'del', v.replace(/^\d+: /, '')]).catch(() => undefined);
  }
}
