/**
 * One daemon with 3 peers, then with 1,000 more leases written into etcd by a script: it follows
 * them all (one route each) without trouble. Prints the daemon's RSS in both states. Default
 * flags: the route count comes from the daemon's 'peers updated' log lines.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCluster, PREFIX, tunAddress, until, type Cluster, type Daemon } from './cluster.js';

let c: Cluster;
const ds: Daemon[] = [];

const rssMiB = (pid: number) => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))![1]) / 1024;

beforeAll(async () => {
  // /27 subnets: 2,047 leasable, room for 1,000 leases plus the nodes
  c = await createCluster({ nodes: 4, tag: 'scale', config: '{"Network":"10.244.0.0/16","SubnetLen":27}' });
  for (const n of c.bed.nodes) ds.push(c.startDaemon(n));
  for (const d of ds) await d.readySubnet();
});

afterAll(async () => {
  await c?.teardown();
});

describe('scale', () => {
  it('follows 3 peers, then 1,000 more leases', async () => {
    const d = ds[0]!;
    await until('3 peers', () => d.routeCount() === 3);
    const subnets = await Promise.all(ds.map((x) => x.readySubnet()));
    for (const s of subnets.slice(1)) expect((await c.ping(d.node, tunAddress(s), 3, 1)).ok).toBe(true);
    const rss3 = rssMiB(d.proc.pid!);

    // 1,000 leases on made-up nodes, written by a script with the etcd3 client inside etcd's namespace
    const taken = new Set(subnets);
    const script = `
      const { Etcd3 } = require(${JSON.stringify(path.resolve('node_modules/etcd3'))});
      const c = new Etcd3({ hosts: ${JSON.stringify(c.etcd.endpoint)} });
      const taken = new Set(${JSON.stringify([...taken])});
      (async () => {
        const all = [];
        for (let i = 1; all.length < 1000; i++) {
          const base = i * 32, s = '10.244.' + (base >> 8) + '.' + (base & 255);
          if (taken.has(s + '/27')) continue;
          all.push([s + '-27', JSON.stringify({ PublicIP: '198.19.' + (all.length >> 8) + '.' + (all.length & 255), PublicIPv6: null, BackendType: 'udp' })]);
        }
        for (let i = 0; i < all.length; i += 100) await Promise.all(all.slice(i, i + 100).map(([k, v]) => c.put(${JSON.stringify(`${PREFIX}/subnets/`)} + k).value(v)));
        c.close();
      })().catch((e) => { console.error(e); process.exit(1); });`;
    const t0 = Date.now();
    await c.bed.exec(c.etcdNode.ns, process.execPath, ['-e', script], 60_000);
    await until('1,003 routes in the daemon', () => d.routeCount() === 1003, 60_000, 250);
    const followMs = Date.now() - t0;
    const last = [...d.logs].reverse().find((l) => l.msg === 'peers updated')!;
    expect(last).toMatchObject({ routes: 1003, peers: 1003 });
    expect(d.proc.exitCode).toBeNull();
    const rss1000 = rssMiB(d.proc.pid!);
    console.log(
      `[measure] daemon RSS with 3 peers: ${rss3.toFixed(1)} MiB; ` +
        `with 1,003 leases: ${rss1000.toFixed(1)} MiB; 1,000 leases written and followed in ${followMs} ms`,
    );
    // still forwarding to the real peers
    expect((await c.ping(d.node, tunAddress(subnets[1]!), 1, 1)).ok).toBe(true);
  });
});
