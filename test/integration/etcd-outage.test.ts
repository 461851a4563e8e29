/**
 * etcd goes away: the data plane keeps forwarding with the last known table, the daemons say
 * so (in /healthz and in the log), reconnect by themselves, and renewals resume. A node cut off
 * from etcd while history is compacted resyncs to exactly what etcd holds. Node A serves
 * /healthz (the tests read its state and route table there); B and C run with default flags.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCluster, PREFIX, tunAddress, until, type Cluster, type Daemon } from './cluster.js';

let c: Cluster;
const ds: Daemon[] = [];
const subnets: string[] = [];

beforeAll(async () => {
  c = await createCluster({ nodes: 3, tag: 'out' });
  // short TTL so renewals happen during the test; margin leaves time to retry
  for (const [i, n] of c.bed.nodes.entries()) ds.push(c.startDaemon(n, ['--subnet-lease-ttl=20s', '--subnet-lease-renew-margin=10s'], process.env, { health: i === 0 }));
  for (const d of ds) subnets.push(await d.readySubnet());
  await until('a full table everywhere', () => ds.every((d) => d.routeCount() === 2));
});

const renewals = (d: Daemon) => d.logs.filter((l) => l.msg === 'lease renewed').length;
/** the daemon's last word on its etcd watch */
const watchUp = (d: Daemon) => [...d.logs].reverse().find((l) => /^etcd watch (connected|disconnected)/.test(l.msg))?.msg.startsWith('etcd watch connected');

afterAll(async () => {
  await c?.teardown();
});

describe('etcd outage', () => {
  it('etcd stopped for 30 s during a ping stream: no loss, health says disconnected, renewals resume', async () => {
    const [a, b] = ds as [Daemon, Daemon];
    // 200 pings, 0.2 s apart (40 s), each with a 2 s deadline
    const ping = c.bed.exec(a.node.ns, 'ping', ['-n', '-q', '-i', '0.2', '-c', '200', '-W', '2', tunAddress(subnets[1]!)], 60_000);
    await new Promise((r) => setTimeout(r, 3000));
    const before = renewals(b);
    await c.etcd.stop();
    const stoppedAt = Date.now();
    const down = await until('health to report etcd disconnected', async () => {
      const h = await c.health(a);
      return h.etcd.etcd === 'disconnected' && h;
    }, 10_000, 200);
    expect(down.state).toBe('running');
    expect(Object.keys(down.routes)).toHaveLength(2);
    // a daemon stopped while etcd is away still cleans up and exits 0
    ds[2]!.proc.kill('SIGTERM');
    expect(await ds[2]!.exit).toBe(0);
    await new Promise((r) => setTimeout(r, Math.max(0, 30_000 - (Date.now() - stoppedAt))));
    // the table is untouched while etcd is away, and B (default flags, nothing else open) is still there
    expect(Object.keys((await c.health(a)).routes)).toHaveLength(2);
    expect(b.routeCount()).toBe(2);
    expect(watchUp(b)).toBe(false);
    expect(b.proc.exitCode).toBeNull();
    await c.etcd.start();
    // and comes back on the same subnet
    ds[2] = c.startDaemon(c.bed.nodes[2]!, ['--subnet-lease-ttl=20s', '--subnet-lease-renew-margin=10s']);
    expect(await ds[2].readySubnet()).toBe(subnets[2]);
    const { stdout } = await ping;
    expect(stdout).toMatch(/200 packets transmitted, 200 received, 0% packet loss/);
    await until('renewals to resume on every node', async () => {
      return (await c.health(a)).etcd.etcd === 'connected' && watchUp(b) && watchUp(ds[2]!) && renewals(b) > before;
    }, 30_000, 250);
    const keys = (await c.etcd.etcdctl(['get', '--prefix', `${PREFIX}/subnets/`, '--keys-only'])).split('\n').filter(Boolean);
    expect(keys).toHaveLength(3);
  });

  it('a node cut off from etcd resumes its watch where it left off (no resync needed)', async () => {
    const [a] = ds as [Daemon];
    const block = ['-p', 'tcp', '-d', c.etcdNode.underlayIp, '--dport', '2379', '-j', 'REJECT', '--reject-with', 'tcp-reset'];
    await c.bed.exec(a.node.ns, 'iptables', ['-I', 'OUTPUT', ...block]);
    await c.bed.exec(a.node.ns, 'ss', ['-K', 'dst', c.etcdNode.underlayIp]);
    await until('node A to notice', async () => (await c.health(a)).etcd.etcd === 'disconnected', 20_000, 200);
    await c.etcd.etcdctl(['put', `${PREFIX}/subnets/10.244.240.0-24`, '{"PublicIP":"198.18.0.97","PublicIPv6":null,"BackendType":"udp"}']);
    await c.etcd.etcdctl(['put', `${PREFIX}/subnets/10.244.241.0-24`, '{"PublicIP":"198.18.0.96","PublicIPv6":null,"BackendType":"udp"}']);
    await c.etcd.etcdctl(['del', `${PREFIX}/subnets/10.244.241.0-24`]);
    const resyncsBefore = a.logs.filter((l) => /resync/.test(l.msg)).length;
    await c.bed.exec(a.node.ns, 'iptables', ['-D', 'OUTPUT', ...block]);
    await until('node A to catch up', async () => {
      const h = await c.health(a);
      return h.etcd.etcd === 'connected' && '10.244.240.0/24' in h.routes && !('10.244.241.0/24' in h.routes);
    }, 30_000, 250);
    expect(a.logs.filter((l) => /resync/.test(l.msg)).length).toBe(resyncsBefore);
    await c.etcd.etcdctl(['del', `${PREFIX}/subnets/10.244.240.0-24`]);
    await until('the route gone again', async () => !('10.244.240.0/24' in (await c.health(a)).routes));
  });

  it('a compaction while a node is cut off from etcd: after reconnecting its table equals etcd', async () => {
    const [a, , cc] = ds as [Daemon, Daemon, Daemon];
    const block = ['-p', 'tcp', '-d', c.etcdNode.underlayIp, '--dport', '2379', '-j', 'REJECT', '--reject-with', 'tcp-reset'];
    await c.bed.exec(a.node.ns, 'iptables', ['-I', 'OUTPUT', ...block]);
    await c.bed.exec(a.node.ns, 'ss', ['-K', 'dst', c.etcdNode.underlayIp]);
    await until('node A to notice', async () => (await c.health(a)).etcd.etcd === 'disconnected', 20_000, 200);
    // meanwhile: node C leaves for good, a new node appears, and history is compacted
    cc.proc.kill('SIGTERM');
    await cc.exit;
    await c.etcd.etcdctl(['del', `${PREFIX}/subnets/${subnets[2]!.replace('/', '-')}`]);
    await c.etcd.etcdctl(['put', `${PREFIX}/subnets/10.244.250.0-24`, '{"PublicIP":"198.18.0.99","PublicIPv6":null,"BackendType":"udp"}']);
    await c.etcd.etcdctl(['put', `${PREFIX}/subnets/10.244.251.0-24`, '{"PublicIP":"198.18.0.98","PublicIPv6":null,"BackendType":"udp"}']);
    await c.etcd.etcdctl(['del', `${PREFIX}/subnets/10.244.251.0-24`]);
    const rev = JSON.parse(await c.etcd.etcdctl(['get', `${PREFIX}/config`, '-w', 'json'])).header.revision as number;
    await c.etcd.etcdctl(['compaction', '--physical', String(rev)]);
    expect(Object.keys((await c.health(a)).routes)).toContain(subnets[2]); // still the old view
    await c.bed.exec(a.node.ns, 'iptables', ['-D', 'OUTPUT', ...block]);
    const truth = (await c.etcd.etcdctl(['get', '--prefix', `${PREFIX}/subnets/`, '--keys-only']))
      .split('\n').filter(Boolean).map((k) => k.slice(`${PREFIX}/subnets/`.length).replace('-', '/')).filter((s) => s !== subnets[0]).sort();
    expect(truth).toEqual([subnets[1]!, '10.244.250.0/24'].sort());
    await until('node A to resync to what etcd holds', async () => {
      const h = await c.health(a);
      return h.etcd.etcd === 'connected' && JSON.stringify(Object.keys(h.routes).sort()) === JSON.stringify(truth);
    }, 30_000, 250);
    expect(a.logs.some((l) => /resync/.test(l.msg))).toBe(true);
  });
});
