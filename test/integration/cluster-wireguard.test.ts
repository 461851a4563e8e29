/**
 * `Backend.Type: "wireguard"` through `tulle run`: leases carry BackendData {PublicKey, Port},
 * the TUN MTU is underlay − 80 (flanneld's), nodes reach each other encrypted, a restarted node keeps its key
 * and subnet, and plain leases in the same network are skipped.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCluster, PREFIX, tunAddress, until, type Cluster, type Daemon } from './cluster.js';

let c: Cluster;
const ds: Daemon[] = [];
const subnets: string[] = [];

const leaseOf = async (subnet: string) =>
  JSON.parse(await c.etcd.etcdctl(['get', `${PREFIX}/subnets/${subnet.replace('/', '-')}`, '--print-value-only'])) as Record<string, any>;

beforeAll(async () => {
  c = await createCluster({ nodes: 3, tag: 'wgd', config: '{"Network":"10.244.0.0/16","Backend":{"Type":"wireguard"}}' });
});

afterAll(async () => {
  await c?.teardown();
});

describe('tulle run with the wireguard backend', () => {
  it('leases carry the public key and port; MTU is underlay − 80 (as flanneld); the mesh pings', async () => {
    for (const n of c.bed.nodes) ds.push(c.startDaemon(n));
    for (const d of ds) subnets.push(await d.readySubnet());
    for (let i = 0; i < 3; i++) {
      const v = await leaseOf(subnets[i]!);
      expect(v).toMatchObject({ PublicIP: c.bed.nodes[i]!.underlayIp, PublicIPv6: null, BackendType: 'wireguard', BackendData: { Port: 51820 } });
      expect(Buffer.from(v.BackendData.PublicKey, 'base64')).toHaveLength(32);
    }
    expect(readFileSync(`${ds[0]!.dir}/subnet.env`, 'utf8')).toContain('FLANNEL_MTU=1420');
    await until('every pair to ping', async () => {
      const rs = await Promise.all(
        ds.flatMap((a, i) => ds.filter((_, j) => j !== i).map((_, k) => c.ping(a.node, tunAddress(subnets[k >= i ? k + 1 : k]!), 1, 1))),
      );
      return rs.every((r) => r.ok);
    }, 20_000, 100);
    const ready = ds[0]!.logs.find((l) => l.msg === 'node ready');
    expect(ready).toMatchObject({ mtu: 1420 });
    expect(ds[0]!.routeCount()).toBe(2); // a route to each of the 2 peers
    const { stdout } = await c.bed.exec(ds[0]!.node.ns, 'ip', ['-j', 'link', 'show', 'tulle0']);
    expect(JSON.parse(stdout)[0].mtu).toBe(1420);
  });

  it('skips plain udp leases in a wireguard network with a log line', async () => {
    await c.etcd.etcdctl(['put', `${PREFIX}/subnets/10.244.250.0-24`, '{"PublicIP":"198.18.0.99","PublicIPv6":null,"BackendType":"udp"}']);
    await ds[0]!.waitLog((l) => l.msg === 'skipping lease' && l.subnet === '10.244.250.0/24');
    expect(ds[0]!.routeCount()).toBe(2); // the two wireguard peers, not the udp lease
  });

  it('a restarted node keeps its key and subnet, and traffic comes back', async () => {
    const d = ds[1]!;
    const before = await leaseOf(subnets[1]!);
    d.proc.kill('SIGKILL');
    await d.exit;
    ds[1] = c.startDaemon(c.bed.nodes[1]!);
    expect(await ds[1].readySubnet()).toBe(subnets[1]);
    expect((await leaseOf(subnets[1]!)).BackendData.PublicKey).toBe(before.BackendData.PublicKey);
    await until('traffic back', async () => (await c.ping(ds[0]!.node, tunAddress(subnets[1]!), 1, 1)).ok, 30_000, 100);
  });
});
