/**
 * The real CNI pod path on hosts like Docker's (FORWARD policy DROP): three nodes running
 * `tulle run` against a real etcd, a pod per node made by Debian's `bridge` + `host-local`
 * plugins from subnet.env exactly as flannel's CNI plugin delegates, in both modes (udp,
 * wireguard): pod ↔ pod ping and an exact TCP transfer across nodes, egress with --ip-masq to a
 * host outside the overlay that has no route back, CNI DEL leaving nothing behind; and, without
 * the forward rules, the same pods cannot reach each other (so the test can fail).
 */
import { readFileSync } from 'node:fs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { BedNode } from '../bed/bed.js';
import { createCluster, tunAddress, until, type Cluster } from '../integration/cluster.js';
import { delegateConf, parseSubnetEnv } from './pods.js';
import { delPodsLeavingNothing, expectExactTransfer, expectPodMesh, ping, resetNodes, startScenario, stopScenario } from './scenario.js';

let c: Cluster;
let outside: BedNode;

const forwardDrops = async (ns: string) =>
  Number(/Chain FORWARD \(policy DROP (\d+) packets/.exec((await c.bed.exec(ns, 'iptables', ['-L', 'FORWARD', '-v', '-x', '-n'])).stdout)?.[1] ?? NaN);

beforeAll(async () => {
  c = await createCluster({ nodes: 3, tag: 'cni', config: '' });
  outside = await c.bed.addHost('out', 50); // on the underlay, outside the overlay, no route to 10.244.0.0/16
  for (const n of c.bed.nodes) await c.bed.exec(n.ns, 'iptables', ['-P', 'FORWARD', 'DROP']);
});

// a failed test must not leave its daemons or bridges to the next one
afterEach(async () => {
  if (c) await resetNodes(c);
});

afterAll(async () => {
  await c?.teardown();
});

describe('the CNI config is what flannel\'s plugin hands to bridge', () => {
  it('maps subnet.env as flannel_linux.go does', () => {
    const env = parseSubnetEnv('FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.7.1/24\nFLANNEL_MTU=1472\nFLANNEL_IPMASQ=false\n');
    expect(delegateConf(env)).toEqual({
      hairpinMode: true, isDefaultGateway: true, name: 'cbr0', type: 'bridge', ipMasq: true, mtu: 1472, isGateway: true, cniVersion: '0.3.1',
      ipam: { type: 'host-local', ranges: [[{ subnet: '10.244.7.0/24' }]], routes: [{ dst: '10.244.0.0/16' }] },
    });
  });
});

describe('pods on FORWARD-DROP hosts, default flags', () => {
  for (const backend of ['udp', 'wireguard'] as const) {
    it(`${backend}: pod ↔ pod ping and an exact 8 MiB TCP transfer across nodes; CNI DEL leaves nothing`, async () => {
      const s = await startScenario(c, `/cni/${backend}`, `{"Network":"10.244.0.0/16","Backend":{"Type":"${backend}"}}`, []);
      const env = parseSubnetEnv(readFileSync(`${s.ds[0]!.dir}/subnet.env`, 'utf8'));
      expect(s.pods[0]!.conf).toMatchObject({ ipMasq: true, mtu: env.mtu, ipam: { ranges: [[{ subnet: s.subnets[0] }]] } });
      expect(env.mtu).toBe(backend === 'udp' ? 1472 : 1420); // underlay 1500 − 28, or − 80 as flanneld's wireguard
      await expectPodMesh(c, s.pods);
      await expectExactTransfer(c, s.pods[0]!, s.pods[1]!);
      await expectExactTransfer(c, s.pods[2]!, s.pods[0]!);
      await delPodsLeavingNothing(c, s);
      await stopScenario(c, s);
    });
  }
});

describe('without the forward rules the pod path fails', () => {
  it('--iptables-forward-rules=false: nodes reach each other, pods do not (dropped in FORWARD)', async () => {
    const s = await startScenario(c, '/cni/nofwd', '{"Network":"10.244.0.0/16"}', ['--iptables-forward-rules=false'], { nodes: c.bed.nodes.slice(0, 2) });
    const [a, b] = s.pods as [typeof s.pods[0], typeof s.pods[0]];
    // the overlay itself works: node 0 reaches node 1's TUN address
    await until('node to node over the overlay', () => ping(c, a.node.ns, tunAddress(s.subnets[1]!)), 60_000, 200);
    const before = await forwardDrops(a.node.ns);
    expect(await ping(c, a.ns, b.ip, 3, 1)).toBe(false);
    expect(await forwardDrops(a.node.ns)).toBeGreaterThan(before);
    await delPodsLeavingNothing(c, s);
    await stopScenario(c, s);
  });
});

describe('egress with --ip-masq', () => {
  it('a pod reaches a host outside the overlay with no route back; without the MASQUERADE rule it cannot, until the resync puts it back', async () => {
    const s = await startScenario(c, '/cni/masq', '{"Network":"10.244.0.0/16"}', ['--ip-masq']);
    const pod = s.pods[0]!;
    expect(pod.conf).toMatchObject({ ipMasq: false }); // tulle masquerades, not the bridge plugin
    await expect(c.bed.exec(outside.ns, 'ip', ['route', 'get', pod.ip])).rejects.toThrow(/unreachable/i);
    await expectPodMesh(c, s.pods);
    await until('the pod to reach the outside host', () => ping(c, pod.ns, outside.underlayIp), 60_000, 200);

    const rule = ['-s', '10.244.0.0/16', '!', '-d', '224.0.0.0/4', '-m', 'comment', '--comment', 'flanneld masq', '-j', 'MASQUERADE', '--random-fully'];
    await c.bed.exec(pod.node.ns, 'iptables', ['-t', 'nat', '-D', 'FLANNEL-POSTRTG', ...rule]);
    expect(await ping(c, pod.ns, outside.underlayIp, 1, 1)).toBe(false); // a new ping id: a new, un-NATed flow
    await until('the resync to put the rule back and egress to work again', () => ping(c, pod.ns, outside.underlayIp), 60_000, 200);
    await c.bed.exec(pod.node.ns, 'iptables', ['-t', 'nat', '-C', 'FLANNEL-POSTRTG', ...rule]);
    await delPodsLeavingNothing(c, s);
    await stopScenario(c, s);
  });
});
