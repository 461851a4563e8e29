/**
 * The control plane at cluster scale, correctness only (issue 14; speed is bench:control-plane):
 *   - 2,000 leases written into etcd as flanneld writes them (one etcd lease each), then a real
 *     daemon starts: its data plane's table (/healthz routes) equals etcd's, lease for lease;
 *   - 50 nodes race for subnets at once (tulle's lease manager, one etcd client each): all get
 *     one, no two overlap, and the running daemon's table again equals etcd's;
 *   - leases deleted in etcd leave the daemon's table.
 * Real etcd in a namespace, the real daemon with default flags plus the health port (to read the
 * table). Deadlines are generous: the machine is shared.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLeaseDriver, type LeaseDriver } from '../bed/lease-driver.js';
import { createCluster, until, type Cluster, type Daemon } from './cluster.js';
import { parseNet } from '../../src/util/ip.js';

const net4Size = (len: number) => 2 ** (32 - len);
const parseNet4 = (s: string) => { const n = parseNet(s, 4); return { base: Number(n.base), len: n.len }; };

// /28 subnets: 4,094 leasable, room for 2,000 + 50 + the node
const CONFIG = '{"Network":"10.244.0.0/16","SubnetLen":28,"Backend":{"Type":"udp"}}';
const N = 2000;
const RACERS = 50;

let c: Cluster;
let driver: LeaseDriver;
let d: Daemon;
let own: string;

beforeAll(async () => {
  c = await createCluster({ nodes: 1, tag: 'cps', config: CONFIG });
  driver = startLeaseDriver(c.bed, c.etcdNode.ns, c.etcd.endpoint);
  await driver({ cmd: 'config', value: CONFIG });
}, 120_000);

afterAll(async () => {
  await c?.teardown();
});

/** etcd's leases (but ours) as the daemon should route them: subnet → PublicIP:8285 */
async function etcdTable(): Promise<Record<string, string>> {
  const { leases } = (await driver({ cmd: 'list' }, 60_000)) as { leases: Record<string, string> };
  return Object.fromEntries(Object.entries(leases).filter(([s]) => s !== own).map(([s, ip]) => [s, `${ip}:8285`]).sort());
}

async function daemonTable(): Promise<Record<string, string>> {
  const h = await c.health(d);
  return Object.fromEntries(Object.entries(h.routes as Record<string, string>).sort());
}

/** polls until the daemon's table equals etcd's; on the deadline, fails with the difference */
async function expectTablesEqual(what: string, size: number): Promise<void> {
  const want = await etcdTable();
  expect(Object.keys(want)).toHaveLength(size);
  let got: Record<string, string> = {};
  try {
    await until(what, async () => {
      got = await daemonTable();
      return Object.keys(got).length === size && JSON.stringify(got) === JSON.stringify(want);
    }, 120_000, 500);
  } catch (e) {
    const missing = Object.keys(want).filter((s) => got[s] !== want[s]).slice(0, 5);
    const extra = Object.keys(got).filter((s) => !(s in want)).slice(0, 5);
    throw new Error(`${(e as Error).message}; daemon has ${Object.keys(got).length}, etcd ${size}; missing/wrong ${missing.join(' ')}; extra ${extra.join(' ')}`);
  }
  expect(got).toEqual(want);
}

describe('control plane at scale', () => {
  it(`a daemon starting among ${N} leases routes exactly etcd's table`, async () => {
    await driver({ cmd: 'write', from: 0, count: N }, 300_000);
    d = c.startDaemon(c.bed.nodes[0]!, [], process.env, { health: true });
    own = await d.readySubnet(120_000);
    await expectTablesEqual(`the daemon's table to equal etcd's ${N} leases`, N);
    expect(d.proc.exitCode).toBeNull();
  }, 400_000);

  it(`${RACERS} racing joiners get distinct subnets and the daemon follows them all`, async () => {
    const st = await driver({ cmd: 'storm', from: 40_000, count: RACERS, deadlineMs: 120_000 }, 200_000);
    expect(st.acquired).toBe(RACERS);
    expect(new Set(st.subnets).size).toBe(RACERS);
    // no two leases in etcd overlap (any sizes), ours and the 2,000 included
    const { leases } = (await driver({ cmd: 'list' }, 60_000)) as { leases: Record<string, string> };
    const ranges = Object.keys(leases).map((s) => parseNet4(s)).map((n) => [n.base, n.base + net4Size(n.len)] as const).sort((a, b) => a[0] - b[0]);
    expect(ranges).toHaveLength(N + RACERS + 1);
    for (let i = 1; i < ranges.length; i++) expect(ranges[i]![0]).toBeGreaterThanOrEqual(ranges[i - 1]![1]);
    for (const s of st.subnets as string[]) expect(leases[s]).toBeDefined();
    await expectTablesEqual(`the daemon's table to hold the ${RACERS} new leases`, N + RACERS);
  }, 400_000);

  it('leases deleted in etcd leave the table', async () => {
    const r = await driver({ cmd: 'delete', from: 0, count: 100 }, 60_000);
    expect(r.deleted).toBe(100);
    await expectTablesEqual('the daemon to drop 100 deleted leases', N + RACERS - 100);
    expect(d.proc.exitCode).toBeNull();
  }, 300_000);
});
