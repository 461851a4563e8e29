/**
 * 26 `tulle run` daemons with default flags racing for exactly 26 free subnets, three rounds:
 * every daemon ends with a lease of its own and none exits (issue 15: losers of the race used to
 * leave silently while they waited to retry). They start without a network config and all go
 * when it is written. Each round moves the subnet range, so the subnet a node remembers from
 * the round before is out of range and it races again.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stopProcess } from '../bed/bed.js';
import { createCluster, PREFIX, tunAddress, type Cluster, type Daemon } from './cluster.js';

const N = 26;
const ROUNDS = 3;
let c: Cluster;

/** round r: 10.244.(1 + 32r).0/24 … 10.244.(N + 32r).0/24, exactly N subnets */
const configOf = (r: number) =>
  JSON.stringify({ Network: '10.244.0.0/16', SubnetMin: `10.244.${1 + 32 * r}.0`, SubnetMax: `10.244.${N + 32 * r}.0`, Backend: { Type: 'udp' } });

beforeAll(async () => {
  c = await createCluster({ nodes: N, tag: 'race', config: '' });
}, 180_000);

afterAll(async () => {
  await c?.teardown();
}, 180_000);

describe(`${N} daemons racing for ${N} subnets`, () => {
  for (let round = 0; round < ROUNDS; round++) {
    it(`round ${round + 1}: ${N} distinct leases, each naming its node; nobody exits`, async () => {
      await c.etcd.etcdctl(['del', '--prefix', `${PREFIX}/`]);
      // all start and wait for the network config (a few at a time would race less: on this
      // shared machine 26 processes take long to start); the config makes them all go at once
      const ds: Daemon[] = c.bed.nodes.map((n) => c.startDaemon(n));
      try {
        await Promise.all(ds.map((d) => d.waitLog((l) => /no network config/.test(l.msg), 300_000)));
        await c.etcd.etcdctl(['put', `${PREFIX}/config`, configOf(round)]);
        const subnets = await Promise.all(ds.map((d) => d.readySubnet(180_000)));
        expect(new Set(subnets).size).toBe(N);
        const lines = (await c.etcd.etcdctl(['get', '--prefix', `${PREFIX}/subnets/`])).split('\n').filter(Boolean);
        expect(lines).toHaveLength(2 * N);
        for (let i = 0; i < N; i++) {
          const key = lines.indexOf(`${PREFIX}/subnets/${subnets[i]!.replace('/', '-')}`);
          expect(key, subnets[i]).toBeGreaterThanOrEqual(0);
          expect(JSON.parse(lines[key + 1]!).PublicIP).toBe(c.bed.nodes[i]!.underlayIp);
        }
        // the first and the last to start reach each other
        const first = ds[0]!;
        const last = ds[N - 1]!;
        const ping = async () => (await c.ping(first.node, tunAddress(subnets[N - 1]!), 1, 1)).ok && (await c.ping(last.node, tunAddress(subnets[0]!), 1, 1)).ok;
        const end = Date.now() + 60_000;
        while (!(await ping())) if (Date.now() > end) throw new Error('first and last never reached each other');
        expect(ds.filter((d) => d.proc.exitCode !== null).map((d) => `${d.node.ns}: ${d.proc.exitCode}`)).toEqual([]);
        // 'lease acquired' says on which attempt: every attempt before it was a lost race
        const attempts = ds.map((d) => Number(d.logs.find((l) => l.msg === 'lease acquired')?.attempt));
        const lost = attempts.reduce((n, a) => n + a - 1, 0);
        console.log(`[measure] round ${round + 1}: ${N} daemons for ${N} subnets: ${lost} lost races retried, at most ${Math.max(...attempts)} attempts by one node`);
        await Promise.all(ds.map(async (d) => {
          d.proc.kill('SIGTERM');
          expect(await d.exit).toBe(0);
        }));
      } finally {
        await Promise.all(ds.map((d) => stopProcess(d.proc, 10_000)));
      }
    }, 600_000);
  }
});
