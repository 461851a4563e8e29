/**
 * The real CNI pod path with `EnableNFTables: true`: daemons that have no iptables binary on
 * their PATH put flanneld's rules into nftables (table ip flannel-ipv4) and nothing into
 * iptables; pods from the real bridge + host-local plugins reach each other (ping, exact TCP)
 * and, with --ip-masq, a host outside the overlay through the nftables masquerade — which a
 * resync puts back when deleted; CNI DEL leaves nothing; SIGTERM removes the table.
 * And flanneld's caveat, kept: an nftables accept does not override a FORWARD DROP policy set
 * in iptables (another table), so on such a host the pods do not reach each other.
 */
import { mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { BedNode } from '../bed/bed.js';
import { createCluster, until, type Cluster } from '../integration/cluster.js';
import { delPodsLeavingNothing, expectExactTransfer, expectPodMesh, ping, resetNodes, startScenario, stopScenario } from './scenario.js';

let c: Cluster;
let outside: BedNode;
let noIptables: string;

beforeAll(async () => {
  c = await createCluster({ nodes: 3, tag: 'cnf', config: '' });
  outside = await c.bed.addHost('out', 50);
  noIptables = mkdtempSync(path.join(tmpdir(), 'tulle-nft-only-'));
  symlinkSync('/usr/sbin/nft', path.join(noIptables, 'nft'));
});

// a failed test must not leave its daemons or bridges to the next one
afterEach(async () => {
  if (c) await resetNodes(c);
});

afterAll(async () => {
  await c?.teardown();
  if (noIptables) rmSync(noIptables, { recursive: true, force: true });
});

const nft = async (ns: string, ...args: string[]) => (await c.bed.exec(ns, 'nft', args)).stdout;

describe('pods with EnableNFTables', () => {
  it('nftables only: pod ↔ pod, exact TCP, egress through nft masquerade (resynced), CNI DEL leaves nothing, SIGTERM removes the table', async () => {
    const env = { ...process.env, PATH: `${noIptables}:/usr/bin` };
    const s = await startScenario(c, '/cni/nft', '{"Network":"10.244.0.0/16","EnableNFTables":true}', ['--ip-masq'], { env });
    for (const n of c.bed.nodes) {
      // flanneld's table and nothing else: no iptables table was ever made on these nodes
      expect((await nft(n.ns, 'list', 'tables')).trim()).toBe('table ip flannel-ipv4');
      const t = await nft(n.ns, 'list', 'table', 'ip', 'flannel-ipv4');
      expect(t).toContain('chain postrtg');
      expect(t).toContain('ip saddr 10.244.0.0/16 ip daddr != 224.0.0.0/4 masquerade fully-random');
      expect(t).toContain('ip daddr 10.244.0.0/16 accept');
    }
    expect(s.pods[0]!.conf).toMatchObject({ ipMasq: false });
    await expectPodMesh(c, s.pods);
    await expectExactTransfer(c, s.pods[1]!, s.pods[2]!);

    const pod = s.pods[0]!;
    await expect(c.bed.exec(outside.ns, 'ip', ['route', 'get', pod.ip])).rejects.toThrow(/unreachable/i);
    await until('the pod to reach the outside host', () => ping(c, pod.ns, outside.underlayIp), 60_000, 200);
    const listing = await nft(pod.node.ns, '-a', 'list', 'chain', 'ip', 'flannel-ipv4', 'postrtg');
    const handle = /daddr != 224\.0\.0\.0\/4 masquerade fully-random # handle (\d+)/.exec(listing)![1]!;
    await nft(pod.node.ns, 'delete', 'rule', 'ip', 'flannel-ipv4', 'postrtg', 'handle', handle);
    expect(await ping(c, pod.ns, outside.underlayIp, 1, 1)).toBe(false);
    await until('the resync to put the masquerade back and egress to work again', () => ping(c, pod.ns, outside.underlayIp), 60_000, 200);

    await delPodsLeavingNothing(c, s);
    await stopScenario(c, s);
    for (const n of c.bed.nodes) expect((await nft(n.ns, 'list', 'tables')).trim()).toBe('');
  });

  it("as with flanneld: a FORWARD DROP policy in iptables still drops what flannel-ipv4's forward chain accepts", async () => {
    const s = await startScenario(c, '/cni/nft2', '{"Network":"10.244.0.0/16","EnableNFTables":true}', [], { nodes: c.bed.nodes.slice(0, 2) });
    const [a, b] = s.pods as [typeof s.pods[0], typeof s.pods[0]];
    await expectPodMesh(c, s.pods);
    await c.bed.exec(b.node.ns, 'iptables', ['-P', 'FORWARD', 'DROP']);
    expect(await ping(c, a.ns, b.ip, 3, 1)).toBe(false);
    await c.bed.exec(b.node.ns, 'iptables', ['-P', 'FORWARD', 'ACCEPT']);
    await until('pods to reach each other again', () => ping(c, a.ns, b.ip), 60_000, 200);
    await delPodsLeavingNothing(c, s);
    await stopScenario(c, s);
  });
});
