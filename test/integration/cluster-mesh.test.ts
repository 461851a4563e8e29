/**
 * Real `tulle run` daemons in namespaces against a real etcd: join, full ping mesh, a late
 * joiner, a deleted lease, SIGKILL and restart, SIGTERM cleanup, subnet.env. Default flags,
 * except that the first node serves /healthz and /metrics (two tests are about those).
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCluster, PREFIX, tunAddress, until, type Cluster, type Daemon } from './cluster.js';

let c: Cluster;
const subnetOf = new Map<Daemon, string>();

async function ready(d: Daemon): Promise<string> {
  const subnet = await d.readySubnet();
  subnetOf.set(d, subnet);
  return subnet;
}

/** Every daemon in `from` pings every other daemon in `to` (one packet each, 2 s deadline). */
async function mesh(from: Daemon[], to: Daemon[]): Promise<string[]> {
  const failures: string[] = [];
  await Promise.all(
    from.flatMap((a) =>
      to.filter((b) => b !== a).map(async (b) => {
        const r = await c.ping(a.node, tunAddress(subnetOf.get(b)!));
        if (!r.ok) failures.push(`${a.node.ns} → ${b.node.ns}`);
      }),
    ),
  );
  return failures;
}

beforeAll(async () => {
  c = await createCluster({ nodes: 4, tag: 'mesh' });
});

afterAll(async () => {
  await c?.teardown();
});

describe('a cluster of tulle daemons', () => {
  const ds: Daemon[] = [];

  it('3 nodes join and reach each other (full ping mesh)', async () => {
    for (const [i, n] of c.bed.nodes.slice(0, 3).entries()) ds.push(c.startDaemon(n, [], process.env, { health: i === 0 }));
    const subnets = await Promise.all(ds.map(ready));
    expect(new Set(subnets).size).toBe(3);
    for (const s of subnets) expect(s).toMatch(/^10\.244\.\d+\.0\/24$/);
    // leases in flannel's schema
    const keys = (await c.etcd.etcdctl(['get', '--prefix', `${PREFIX}/subnets/`, '--keys-only'])).split('\n').filter(Boolean).sort();
    expect(keys).toEqual(subnets.map((s) => `${PREFIX}/subnets/${s.replace('/', '-')}`).sort());
    const v = JSON.parse(await c.etcd.etcdctl(['get', `${PREFIX}/subnets/${subnets[0]!.replace('/', '-')}`, '--print-value-only']));
    expect(v).toEqual({ PublicIP: ds[0]!.node.underlayIp, PublicIPv6: null }); // flanneld's udp backend writes no BackendType
    await until('every node to route to the other two', () => ds.every((d) => d.routeCount() === 2));
    expect(await mesh(ds, ds)).toEqual([]);
  });

  it('writes subnet.env as flannel does, and reports ready', async () => {
    const env = readFileSync(`${ds[0]!.dir}/subnet.env`, 'utf8');
    const subnet = subnetOf.get(ds[0]!)!;
    expect(env).toBe(`FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=${subnet.replace('.0/24', '.1/24')}\nFLANNEL_MTU=1472\nFLANNEL_IPMASQ=false\n`);
    const h = await c.health(ds[0]!);
    expect(h).toMatchObject({ state: 'running', ready: true, mtu: 1472, backend: 'udp', etcd: { etcd: 'connected' } });
    const { stdout } = await c.bed.exec(ds[0]!.node.ns, 'ip', ['-j', 'link', 'show', 'tulle0']);
    expect(JSON.parse(stdout)[0].mtu).toBe(1472);
  });

  it('serves the data plane counters on /metrics', async () => {
    const text = await c.metrics(ds[0]!);
    // the ping mesh above went through this node's data plane in both directions
    const value = (re: RegExp) => Number(re.exec(text)?.[1] ?? NaN);
    expect(value(/^tulle_packets_total\{direction="outbound",stage="sent"\} (\d+)$/m)).toBeGreaterThanOrEqual(2);
    expect(value(/^tulle_packets_total\{direction="inbound",stage="delivered"\} (\d+)$/m)).toBeGreaterThanOrEqual(2);
    expect(text).toMatch(/^tulle_dataplane_cpu_seconds_total \d/m);
    expect(text).not.toMatch(/tulle_drops_total\{direction="inbound",reason="spoofed_source"\}/);
  });

  it('a 4th node joins and becomes reachable from all', async () => {
    const t0 = Date.now();
    const d4 = c.startDaemon(c.bed.nodes[3]!);
    ds.push(d4);
    const lease = await d4.waitLog((l) => l.msg === 'lease acquired');
    const firstLog = d4.logs[0]!; // 'starting': node is up and its modules are loaded
    await ready(d4);
    const target = tunAddress(subnetOf.get(d4)!);
    // the new node's first ping out, and everyone reaching it
    const firstPing = until('the new node to ping node 0', async () => (await c.ping(d4.node, tunAddress(subnetOf.get(ds[0]!)!), 1, 1)).ok && Date.now(), 20_000, 10);
    await until('everyone to reach the new node', async () => {
      const rs = await Promise.all(ds.slice(0, 3).map((d) => c.ping(d.node, target, 1, 1)));
      return rs.every((r) => r.ok);
    }, 20_000, 10);
    const joinMs = Date.now() - t0;
    console.log(
      `[measure] daemon start → first log line: ${firstLog.time - t0} ms; → lease held: ${lease.time - t0} ms; ` +
        `→ first ping out: ${(await firstPing) - t0} ms; → reachable from every node: ${joinMs} ms`,
    );
    expect(await mesh([d4], ds)).toEqual([]);
  });

  it("a stopped node's lease deleted in etcd: its route disappears everywhere", async () => {
    const victim = ds[1]!;
    const subnet = subnetOf.get(victim)!;
    // stop it first so it cannot re-acquire; its lease stays (kept for reuse)
    const t0 = Date.now();
    victim.proc.kill('SIGTERM');
    expect(await victim.exit).toBe(0);
    console.log(`[measure] SIGTERM → exit: ${Date.now() - t0} ms`);
    await c.etcd.etcdctl(['del', `${PREFIX}/subnets/${subnet.replace('/', '-')}`]);
    const others = ds.filter((d) => d !== victim);
    // each had a route to the 3 others; the victim's goes
    await until('the route to disappear on every node', () => others.every((d) => d.routeCount() === 2));
    expect(subnet in (await c.health(ds[0]!)).routes).toBe(false);
    for (const d of others) {
      const { stdout } = await c.bed.exec(d.node.ns, 'ip', ['route', 'get', tunAddress(subnet)]);
      expect(stdout).toContain('tulle0'); // the kernel still sends it to the TUN; tulle has no peer for it
      expect((await c.ping(d.node, tunAddress(subnet), 1, 1)).ok).toBe(false);
    }
  });

  it('deleting a running node\'s own lease makes it re-acquire (same subnet), not exit', async () => {
    const d = ds[0]!;
    const subnet = subnetOf.get(d)!;
    await c.etcd.etcdctl(['del', `${PREFIX}/subnets/${subnet.replace('/', '-')}`]);
    await d.waitLog((l) => /re-acquiring/.test(l.msg));
    await until('the lease back in etcd', async () =>
      (await c.etcd.etcdctl(['get', `${PREFIX}/subnets/${subnet.replace('/', '-')}`, '--print-value-only'])).includes(d.node.underlayIp),
    );
    expect(d.proc.exitCode).toBeNull();
    await until('others to route to it again', async () => (await c.ping(ds[2]!.node, tunAddress(subnet), 1, 1)).ok);
  });

  it('SIGKILL and start again: same subnet, traffic back', async () => {
    const d = ds[2]!;
    const subnet = subnetOf.get(d)!;
    d.proc.kill('SIGKILL');
    await d.exit;
    const again = c.startDaemon(d.node);
    ds[2] = again;
    expect(await ready(again)).toBe(subnet);
    await until('traffic back', async () => (await c.ping(ds[0]!.node, tunAddress(subnet), 1, 1)).ok);
  });

  it('SIGTERM removes the routes and the TUN, keeps the lease, exits 0', async () => {
    const d = ds[3]!;
    const subnet = subnetOf.get(d)!;
    d.proc.kill('SIGTERM');
    expect(await d.exit).toBe(0);
    const links = JSON.parse((await c.bed.exec(d.node.ns, 'ip', ['-j', 'link', 'show'])).stdout) as Array<{ ifname: string }>;
    expect(links.map((l) => l.ifname)).not.toContain('tulle0');
    expect((await c.bed.exec(d.node.ns, 'ip', ['route', 'show', '10.244.0.0/16'])).stdout.trim()).toBe('');
    expect(await c.etcd.etcdctl(['get', `${PREFIX}/subnets/${subnet.replace('/', '-')}`, '--print-value-only'])).toContain(d.node.underlayIp);
  });
});
