/** 30 `tulle run` daemons started at once on one network: 30 distinct subnets, and they forward. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCluster, PREFIX, tunAddress, type Cluster } from './cluster.js';

const N = 30;
let c: Cluster;

beforeAll(async () => {
  // 40 subnets for 30 nodes: collisions are likely, so lost races are exercised
  c = await createCluster({ nodes: N, tag: 'race', config: '{"Network":"10.244.0.0/16","SubnetMin":"10.244.1.0","SubnetMax":"10.244.40.0"}' });
}, 180_000);

afterAll(async () => {
  await c?.teardown();
}, 180_000);

describe('30 concurrent daemons', () => {
  it('get 30 distinct subnets, each lease naming its own node', async () => {
    const ds = c.bed.nodes.map((n) => c.startDaemon(n, ['--log-level=debug']));
    const subnets = await Promise.all(ds.map((d) => d.readySubnet(90_000)));
    expect(new Set(subnets).size).toBe(N);
    const lost = ds.reduce((n, d) => n + d.logs.filter((l) => /lost the race/.test(l.msg)).length, 0);
    console.log(`[measure] 30 daemons: ${lost} lost races retried`);
    const out = await c.etcd.etcdctl(['get', '--prefix', `${PREFIX}/subnets/`]);
    const lines = out.split('\n').filter(Boolean);
    expect(lines).toHaveLength(2 * N);
    for (let i = 0; i < N; i++) {
      const key = lines.indexOf(`${PREFIX}/subnets/${subnets[i]!.replace('/', '-')}`);
      expect(JSON.parse(lines[key + 1]!).PublicIP).toBe(c.bed.nodes[i]!.underlayIp);
    }
    // the first and the last to start reach each other
    const first = ds[0]!;
    const last = ds[N - 1]!;
    const ping = async () => (await c.ping(first.node, tunAddress(subnets[N - 1]!), 1, 1)).ok && (await c.ping(last.node, tunAddress(subnets[0]!), 1, 1)).ok;
    const end = Date.now() + 20_000;
    while (!(await ping())) if (Date.now() > end) throw new Error('first and last never reached each other');
  }, 180_000);
});
