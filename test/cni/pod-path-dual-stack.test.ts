/**
 * The CNI pod path in a dual-stack network: two nodes running `tulle run` (real etcd, a
 * dual-stack underlay), a pod per node made by Debian's `bridge` + `host-local` plugins with
 * both ranges, exactly as flannel's CNI plugin delegates (getDelegateIPAM: the IPv4 and the IPv6
 * subnet as ranges, routes to both networks), on hosts whose FORWARD policy is DROP in iptables
 * and ip6tables: pod ↔ pod ping and an exact TCP transfer across nodes in each family, both
 * modes, and CNI DEL leaving nothing behind.
 */
import { readFileSync } from 'node:fs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createCluster, until, type Cluster } from '../integration/cluster.js';
import { delegateConf, parseSubnetEnv, tcpTransfer } from './pods.js';
import { delPodsLeavingNothing, expectPodMesh, ping, resetNodes, startScenario, stopScenario } from './scenario.js';

let c: Cluster;

beforeAll(async () => {
  c = await createCluster({ nodes: 2, tag: 'cn6', config: '', ipv6: 'dual' });
  for (const n of c.bed.nodes) {
    await c.bed.exec(n.ns, 'iptables', ['-P', 'FORWARD', 'DROP']);
    await c.bed.exec(n.ns, 'ip6tables', ['-P', 'FORWARD', 'DROP']);
  }
});

afterEach(async () => {
  if (c) await resetNodes(c);
});

afterAll(async () => {
  await c?.teardown();
});

const DUAL = (backend: string) => JSON.stringify({ Network: '10.244.0.0/16', EnableIPv6: true, IPv6Network: 'fd00:10:244::/56', Backend: { Type: backend } });

describe("flannel's CNI plugin config, dual stack", () => {
  it('maps both pairs of subnet.env as getDelegateIPAM does: IPv4 range, IPv6 range, routes to both networks', () => {
    const env = parseSubnetEnv('FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.7.1/24\nFLANNEL_IPV6_NETWORK=fd00:10:244::/56\nFLANNEL_IPV6_SUBNET=fd00:10:244:7::1/64\nFLANNEL_MTU=1472\nFLANNEL_IPMASQ=false\n');
    expect(delegateConf(env).ipam).toEqual({
      type: 'host-local',
      ranges: [[{ subnet: '10.244.7.0/24' }], [{ subnet: 'fd00:10:244:7::/64' }]],
      routes: [{ dst: '10.244.0.0/16' }, { dst: 'fd00:10:244::/56' }],
    });
  });
});

describe('pods with both families on FORWARD-DROP hosts', () => {
  for (const backend of ['udp', 'wireguard'] as const) {
    it(`${backend}: pod ↔ pod ping in each family and an exact 4 MiB TCP transfer over IPv4 and over IPv6; CNI DEL leaves nothing`, async () => {
      const s = await startScenario(c, `/cni6/${backend}`, DUAL(backend), []);
      const env = parseSubnetEnv(readFileSync(`${s.ds[0]!.dir}/subnet.env`, 'utf8'));
      expect(env.ipv6Subnet).toMatch(/^fd00:10:244:[0-9a-f]+::\/64$/);
      const [a, b] = s.pods as [typeof s.pods[0], typeof s.pods[0]];
      for (const p of s.pods) expect(p.ip6, `${p.name} has an IPv6 address`).toMatch(/^fd00:10:244:/);
      await expectPodMesh(c, s.pods);
      await until('the pods to ping each other over IPv6', async () => (await ping(c, a.ns, b.ip6!)) && (await ping(c, b.ns, a.ip6!)), 30_000, 200);
      for (const to of [b.ip, b.ip6!]) {
        const r = await tcpTransfer(c.bed, a, b, 4 << 20, 5001, undefined, to);
        expect(r.received, `to ${to}`).toBe(r.sent);
        expect(r.sent).toMatch(new RegExp(`^[0-9a-f]{64} ${4 << 20}$`));
      }
      await delPodsLeavingNothing(c, s);
      await stopScenario(c, s);
    });
  }
});
