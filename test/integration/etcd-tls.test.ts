/** --etcd-cafile/--etcd-certfile/--etcd-keyfile against an etcd that demands client certificates. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCluster, PREFIX, tunAddress, until, type Cluster } from './cluster.js';

let c: Cluster;

beforeAll(async () => {
  c = await createCluster({ nodes: 2, tag: 'tls', tls: true });
});

afterAll(async () => {
  await c?.teardown();
});

describe('etcd over TLS', () => {
  it('two nodes lease and reach each other through a TLS etcd with client auth', async () => {
    expect(c.etcd.endpoint).toMatch(/^https:/);
    const ds = c.bed.nodes.map((n) => c.startDaemon(n));
    const subnets = await Promise.all(ds.map((d) => d.readySubnet()));
    expect((await c.etcd.etcdctl(['get', '--prefix', `${PREFIX}/subnets/`, '--keys-only'])).split('\n').filter(Boolean)).toHaveLength(2);
    await until('a ping across', async () => (await c.ping(ds[0]!.node, tunAddress(subnets[1]!), 1, 1)).ok);
  });

  it('without a client certificate it cannot get in, and says so (no crash)', async () => {
    const d = c.startDaemon(c.bed.nodes[0]!, [`--etcd-certfile=`, `--etcd-keyfile=`, '--tun-name=tulle1'], process.env);
    await d.waitLog((l) => /cannot reach etcd/.test(l.msg));
    // and keeps trying, with no health port or anything else open
    await d.survives(5000);
  });
});
