/**
 * What goes wrong, with real daemons and a real etcd: bad config, no free subnet, etcd absent
 * at start, garbage under subnets/, bad flags; plus --ip-masq and renewal with a short TTL.
 * Each scenario has its own etcd prefix.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { createCluster, until, type Cluster } from './cluster.js';

let c: Cluster;

beforeAll(async () => {
  c = await createCluster({ nodes: 4, tag: 'err', config: '' });
});

afterAll(async () => {
  await c?.teardown();
});

const put = (key: string, value: string) => c.etcd.etcdctl(['put', key, value]);
const fatalOf = (logs: Array<Record<string, unknown>>) => logs.find((l) => l.level === 60);

describe('daemon failures are clear, never crashes', () => {
  it('invalid network config: not fatal; waits, /healthz says why, runs once it is fixed', async () => {
    await put('/t/bad/config', '{"Network":"10.244.0.0/16","SubnetLen":33}');
    const d = c.startDaemon(c.bed.nodes[0]!, ['--etcd-prefix=/t/bad'], process.env, { health: true });
    await d.waitLog((l) => /invalid network config/.test(l.msg));
    const h = await until('health', () => c.health(d));
    expect(h).toMatchObject({ state: 'waiting-for-config', ready: false, error: expect.stringMatching(/\/t\/bad\/config: SubnetLen: must be at most 30/) });
    // written as flanneld accepts it: other case, type in capitals, a vxlan leftover, host bits set
    await put('/t/bad/config', '{"network":"10.244.3.4/16","Backend":{"Type":"UDP","VNI":1}}');
    await d.readySubnet();
    expect(await c.health(d)).toMatchObject({ state: 'running', ready: true, network: '10.244.0.0/16', backend: 'udp' });
    expect(d.logs.filter((l) => /invalid network config/.test(l.msg))).toHaveLength(1);
    expect(d.logs.filter((l) => /^network config: /.test(l.msg)).map((l) => l.msg)).toEqual([
      'network config: Network 10.244.3.4/16 has host bits set; using 10.244.0.0/16 (as flanneld does)',
      'network config: unknown field "Backend.VNI" ignored for Backend.Type "udp" (as flanneld does)',
    ]);
    d.proc.kill('SIGTERM');
    expect(await d.exit).toBe(0);
  });

  it('bad flags: exits 2 naming the flag', async () => {
    const d = c.startDaemon(c.bed.nodes[0]!, ['--subnet-lease-renew-margin=soon']);
    expect(await d.exit).toBe(2);
    expect(fatalOf(d.logs)).toMatchObject({ field: '--subnet-lease-renew-margin' });
  });

  it('--public-ip defaults to the address of --iface; no --iface and no default route is a clear error', async () => {
    await put('/t/iface/config', '{"Network":"10.244.0.0/16"}');
    const n = c.bed.nodes[0]!;
    const noRoute = c.startDaemon(n, ['--etcd-prefix=/t/iface'], process.env, { underlay: false });
    expect(await noRoute.exit).toBe(1);
    expect(fatalOf(noRoute.logs)).toMatchObject({ code: 'ERR_TULLE_IFACE', msg: expect.stringMatching(/--iface or --public-ip/) });
    const d = c.startDaemon(n, ['--etcd-prefix=/t/iface', '--iface=eth0'], process.env, { underlay: false });
    const subnet = await d.readySubnet();
    const v = JSON.parse(await c.etcd.etcdctl(['get', `/t/iface/subnets/${subnet.replace('/', '-')}`, '--print-value-only']));
    expect(v.PublicIP).toBe(n.underlayIp);
    d.proc.kill('SIGTERM');
    expect(await d.exit).toBe(0);
  });

  it('subnet exhaustion: the second node exits 1 with a clear error', async () => {
    await put('/t/full/config', '{"Network":"10.244.0.0/16","SubnetMin":"10.244.7.0","SubnetMax":"10.244.7.0"}');
    const first = c.startDaemon(c.bed.nodes[0]!, ['--etcd-prefix=/t/full']);
    expect(await first.readySubnet()).toBe('10.244.7.0/24');
    const second = c.startDaemon(c.bed.nodes[1]!, ['--etcd-prefix=/t/full']);
    expect(await second.exit).toBe(1);
    expect(fatalOf(second.logs)).toMatchObject({ code: 'ERR_TULLE_NO_SUBNET', msg: expect.stringMatching(/all 1 \/24 subnets/) });
    first.proc.kill('SIGTERM');
    expect(await first.exit).toBe(0);
  });

  it('etcd unreachable at start: waits, says so in /healthz, becomes ready when etcd comes', async () => {
    await put('/t/late/config', '{"Network":"10.244.0.0/16"}');
    await c.etcd.stop();
    try {
      const d = c.startDaemon(c.bed.nodes[2]!, ['--etcd-prefix=/t/late'], process.env, { health: true });
      await d.waitLog((l) => /cannot reach etcd/.test(l.msg));
      const h = await until('health', () => c.health(d));
      expect(h).toMatchObject({ state: 'waiting-for-config', ready: false, etcd: { etcd: 'disconnected' } });
      expect(h.error).toMatch(/etcd get config/);
      expect(d.proc.exitCode).toBeNull();
      // a daemon told to stop while it waits for etcd stops cleanly
      const quitter = c.startDaemon(c.bed.nodes[1]!, ['--etcd-prefix=/t/late']);
      await quitter.waitLog((l) => /cannot reach etcd/.test(l.msg));
      quitter.proc.kill('SIGTERM');
      expect(await quitter.exit).toBe(0);
      await c.etcd.start();
      await d.readySubnet(30_000);
      expect((await c.health(d)).ready).toBe(true);
      d.proc.kill('SIGTERM');
      expect(await d.exit).toBe(0);
    } finally {
      if (!c.etcd.running) await c.etcd.start();
    }
  });

  it('garbage under subnets/ and leases of another backend: skipped with a log line, never a crash', async () => {
    await put('/t/junk/config', '{"Network":"10.244.0.0/16","SubnetMin":"10.244.1.0","SubnetMax":"10.244.3.0"}');
    await put('/t/junk/subnets/10.244.1.0-24', 'this is not json');
    await put('/t/junk/subnets/hello', '{"PublicIP":"198.18.0.50"}');
    await put('/t/junk/subnets/10.244.2.0-24', '{"PublicIP":"198.18.0.51","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1}}');
    // with /healthz: the test reads which subnets are routed
    const d = c.startDaemon(c.bed.nodes[3]!, ['--etcd-prefix=/t/junk'], process.env, { health: true });
    // the only subnet nobody holds, garbage or not
    expect(await d.readySubnet()).toBe('10.244.3.0/24');
    expect(d.logs.filter((l) => l.msg === 'skipping malformed lease').map((l) => l.key).sort()).toEqual(['10.244.1.0-24', 'hello']);
    expect(d.logs.filter((l) => l.msg === 'skipping lease').map((l) => l.subnet)).toEqual(['10.244.2.0/24']);
    // more garbage while running, then a valid lease
    await put('/t/junk/subnets/10.244.9.0-24', '{"PublicIP":[1,2,3]}');
    await put('/t/junk/subnets/10.244.8.0-24', '{"PublicIP":"198.18.0.52","PublicIPv6":null,"BackendType":"udp"}');
    await until('the valid lease routed', async () => '10.244.8.0/24' in (await c.health(d)).routes);
    const h = await c.health(d);
    expect(Object.keys(h.routes)).toEqual(['10.244.8.0/24']);
    expect(h.state).toBe('running');
    expect(d.logs.filter((l) => l.msg === 'skipping malformed lease')).toHaveLength(3);
    d.proc.kill('SIGTERM');
    expect(await d.exit).toBe(0);
  });

  it('another node takes over our subnet: we move to a new one (TUN address, subnet.env) and route the old one to it', async () => {
    await put('/t/move/config', '{"Network":"10.244.0.0/16"}');
    const n = c.bed.nodes[2]!;
    const d = c.startDaemon(n, ['--etcd-prefix=/t/move'], process.env, { health: true });
    const old = await d.readySubnet();
    await put(`/t/move/subnets/${old.replace('/', '-')}`, '{"PublicIP":"198.18.0.77","PublicIPv6":null,"BackendType":"udp"}');
    await d.waitLog((l) => /our subnet changed/.test(l.msg));
    const h = await until('the move to finish', async () => {
      const x = await c.health(d);
      return x.lease.subnet !== old && x.routes[old] === '198.18.0.77:8285' && x;
    });
    const moved = String(h.lease.subnet);
    // not hidden: not ready, /healthz and a metric say the pods on the old subnet must be recreated
    expect(h).toMatchObject({ state: 'subnet-moved', ready: false, subnetMoved: { from: old, to: moved, action: expect.stringMatching(/recreate them/) } });
    expect(await c.metrics(d)).toMatch(/^tulle_subnet_moved 1$/m);
    expect(d.logs.some((l) => l.level === 50 && String(l.msg).startsWith(`our subnet moved from ${old} to ${moved}`))).toBe(true);
    await until('subnet.env rewritten', () => readFileSync(`${d.dir}/subnet.env`, 'utf8').includes(`FLANNEL_SUBNET=${moved.replace('.0/24', '.1/24')}`));
    const addrs = (await c.bed.exec(n.ns, 'ip', ['-4', '-o', 'addr', 'show', 'dev', 'tulle0'])).stdout;
    expect(addrs).toContain(`${moved.split('/')[0]}/32`);
    expect(addrs).not.toContain(`${old.split('/')[0]}/32`);
    d.proc.kill('SIGTERM');
    expect(await d.exit).toBe(0);
  });

  it('renews a short-TTL lease before it expires (never deleted in etcd)', async () => {
    await put('/t/ttl/config', '{"Network":"10.244.0.0/16"}');
    const rev = JSON.parse(await c.etcd.etcdctl(['get', '/t/ttl/config', '-w', 'json'])).header.revision as number;
    // from a revision, so the watch sees everything after it however late it starts
    const watch = c.bed.spawn(c.etcdNode.ns, 'etcdctl', ['--endpoints', c.etcd.endpoint, 'watch', `--rev=${rev + 1}`, '--prefix', '/t/ttl/subnets/']);
    let seen = '';
    watch.stdout!.on('data', (b: Buffer) => (seen += b.toString()));
    const d = c.startDaemon(c.bed.nodes[0]!, ['--etcd-prefix=/t/ttl', '--subnet-lease-ttl=4s', '--subnet-lease-renew-margin=2s']);
    const subnet = await d.readySubnet();
    const start = Date.now();
    await until('three renewals', () => d.logs.filter((l) => l.msg === 'lease renewed').length >= 3, 15_000, 100);
    // three renewals take more than one TTL: without them the key would have expired
    expect(Date.now() - start).toBeGreaterThan(4000);
    await until('the watch to show the create and three renewals', () => (seen.match(/^PUT$/gm)?.length ?? 0) >= 4);
    watch.kill('SIGTERM');
    expect(seen).not.toMatch(/DELETE/);
    const renewed = d.logs.filter((l) => l.msg === 'lease renewed').map((l) => Date.parse(String(l.expiresAt)) - l.time);
    for (const left of renewed) expect(left).toBeGreaterThan(3000); // each renewal restarts the full TTL
    const ttl = await c.etcd.etcdctl(['get', `/t/ttl/subnets/${subnet.replace('/', '-')}`, '-w', 'json']);
    expect(JSON.parse(ttl).kvs[0].lease).toBeGreaterThan(0);
    d.proc.kill('SIGTERM');
    expect(await d.exit).toBe(0);
  });

  it('--ip-masq installs masquerade rules and removes them on exit', async () => {
    await put('/t/masq/config', '{"Network":"10.244.0.0/16"}');
    const n = c.bed.nodes[1]!;
    const d = c.startDaemon(n, ['--etcd-prefix=/t/masq', '--ip-masq']);
    const subnet = await d.readySubnet();
    const rules = (await c.bed.exec(n.ns, 'iptables', ['-t', 'nat', '-S'])).stdout;
    // flanneld's chain and rules (all of them: test/integration/host-rules.test.ts)
    expect(rules).toContain('-A POSTROUTING -m comment --comment "flanneld masq" -j FLANNEL-POSTRTG');
    expect(rules).toContain(`-A FLANNEL-POSTRTG -s ${subnet} -d 10.244.0.0/16 -m comment --comment "flanneld masq" -j RETURN`);
    expect(rules).toContain(`-A FLANNEL-POSTRTG ! -s 10.244.0.0/16 -d ${subnet} -m comment --comment "flanneld masq" -j RETURN`);
    expect(rules).toMatch(/-A FLANNEL-POSTRTG -s 10\.244\.0\.0\/16 ! -d 224\.0\.0\.0\/4 .* -j MASQUERADE --random-fully/);
    expect(readFileSync(`${d.dir}/subnet.env`, 'utf8')).toContain('FLANNEL_IPMASQ=true');
    d.proc.kill('SIGTERM');
    expect(await d.exit).toBe(0);
    expect((await c.bed.exec(n.ns, 'iptables', ['-t', 'nat', '-S'])).stdout).not.toContain('FLANNEL');
  });
});
