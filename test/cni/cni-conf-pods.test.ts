/**
 * --write-cni-conf-when-ready with the real plugins: two nodes run `tulle run` (etcd, default
 * flags otherwise), each writes its conflist from its lease; pods are then made from that file
 * alone by Debian's `bridge`, `host-local` and `portmap` (run as a runtime's libcni runs a
 * list) and reach each other across the overlay — ping, an exact TCP transfer pod to pod, and
 * one through a host port portmap forwards; the same with the wireguard backend (its MTU). A file
 * the user put at the path stops the daemon (exit 1, the file kept) unless --cni-conf-overwrite;
 * a lease that moves rewrites the file.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isTulleConflist, renderCniConflist } from '../../src/host/cni-conf.js';
import { createCluster, until, type Cluster, type Daemon } from '../integration/cluster.js';
import { addPodFromConflist } from './conflist-pods.js';
import { tcpTransfer, type Pod } from './pods.js';
import { ping } from './scenario.js';

const PREFIX = '/cniconf';
const NETWORK = '10.244.0.0/16';
let c: Cluster;
let tmp: string;
const pods: Pod[] = [];

const confPath = (i: number) => path.join(tmp, `node${i}`, 'net.d', '10-tulle.conflist');
const tunMtu = async (d: Daemon) => (JSON.parse((await c.bed.exec(d.node.ns, 'ip', ['-j', 'link', 'show', 'dev', 'tulle0'])).stdout) as Array<{ mtu: number }>)[0]!.mtu;

beforeAll(async () => {
  tmp = mkdtempSync(path.join(tmpdir(), 'tulle-cniconf-'));
  c = await createCluster({ nodes: 2, tag: 'cnicf', config: '' });
  await c.etcd.etcdctl(['put', `${PREFIX}/config`, `{"Network":"${NETWORK}","Backend":{"Type":"udp"}}`]);
});

afterAll(async () => {
  for (const p of pods.splice(0)) await p.del().catch(() => undefined);
  await c?.teardown();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe('the node writes the CNI config; the real plugins make pods from it', () => {
  it('a file the user put there: exit 1 naming it, the file kept (the next test replaces it with --cni-conf-overwrite)', async () => {
    const file = confPath(0);
    const users = '{"name":"mine","cniVersion":"1.0.0","plugins":[{"type":"ptp"}]}\n';
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(file, users);
    const refused = c.startDaemon(c.bed.nodes[0]!, [`--etcd-prefix=${PREFIX}`, `--write-cni-conf-when-ready=${file}`]);
    expect(await refused.exit).toBe(1);
    expect(refused.logs.find((l) => l.level === 60)).toMatchObject({ code: 'ERR_TULLE_CNI_CONF_FOREIGN', msg: expect.stringContaining(`${file} exists and was not written by tulle`) });
    expect(readFileSync(file, 'utf8')).toBe(users);
  });

  it('both nodes write their conflist from the lease; pods from it ping and transfer across the overlay, and through a host port', async () => {
    const ds = [
      c.startDaemon(c.bed.nodes[0]!, [`--etcd-prefix=${PREFIX}`, `--write-cni-conf-when-ready=${confPath(0)}`, '--cni-conf-overwrite']),
      c.startDaemon(c.bed.nodes[1]!, [`--etcd-prefix=${PREFIX}`], { ...process.env, TULLE_WRITE_CNI_CONF_WHEN_READY: confPath(1) }),
    ];
    const subnets = await Promise.all(ds.map((d) => d.readySubnet(120_000)));
    await Promise.all(ds.map((d) => d.waitLog((l) => (l.msg === 'node ready' && l.peers === 1) || (l.msg === 'peers updated' && l.routes === 1), 120_000)));
    const texts: string[] = [];
    for (const [i, d] of ds.entries()) {
      const text = readFileSync(confPath(i), 'utf8');
      texts.push(text);
      // the lease's subnet, the Network, the TUN's own MTU; ipMasq on the bridge as tulle does not masquerade (default flags)
      expect(JSON.parse(text)).toEqual(renderCniConflist({ network: NETWORK, subnet: subnets[i]!, mtu: await tunMtu(d), ipMasq: false }));
      expect(d.logs.find((l) => l.msg === 'CNI config written')).toMatchObject({ file: confPath(i), subnet: subnets[i] });
      // written before the node said it was ready
      expect(d.logs.findIndex((l) => l.msg === 'CNI config written')).toBeLessThan(d.logs.findIndex((l) => l.msg === 'node ready'));
    }
    expect(await tunMtu(ds[0]!)).toBe(1472);

    const [a, b] = c.bed.nodes as [typeof c.bed.nodes[0], typeof c.bed.nodes[0]];
    const hostPort = { hostPort: 18080, containerPort: 5001, protocol: 'tcp' as const };
    const pa = await addPodFromConflist(c.bed, a, 'cfpa', texts[0]!, { ipamDir: path.join(tmp, 'ipam0'), portMappings: [hostPort] });
    pods.push(pa);
    const pb = await addPodFromConflist(c.bed, b, 'cfpb', texts[1]!, { ipamDir: path.join(tmp, 'ipam1') });
    pods.push(pb);
    expect(pa.ip.startsWith(subnets[0]!.split('.').slice(0, 3).join('.') + '.')).toBe(true);
    expect(pb.ip.startsWith(subnets[1]!.split('.').slice(0, 3).join('.') + '.')).toBe(true);
    // the pod's side: the conflist's MTU on eth0, a route to the Network and a default route via the bridge
    const link = JSON.parse((await c.bed.exec(pa.ns, 'ip', ['-j', 'link', 'show', 'dev', 'eth0'])).stdout) as Array<{ mtu: number }>;
    expect(link[0]!.mtu).toBe(1472);
    const routes = (await c.bed.exec(pa.ns, 'ip', ['-4', 'route', 'show'])).stdout;
    expect(routes).toMatch(new RegExp(`^${NETWORK.replace(/\./g, '\\.')} via `, 'm'));
    expect(routes).toMatch(/^default via /m);

    await until('pod a and pod b to ping each other across the overlay', async () => (await ping(c, pa.ns, pb.ip)) && ping(c, pb.ns, pa.ip), 60_000, 200);
    const direct = await tcpTransfer(c.bed, pb, pa, 4 << 20);
    expect(direct.received).toBe(direct.sent);
    expect(direct.sent).toMatch(/^[0-9a-f]{64} 4194304$/);
    // portmap: node a's underlay address, host port 18080 → pod a's port 5001
    const viaHostPort = await tcpTransfer(c.bed, pb, pa, 1 << 20, hostPort.containerPort, { address: a.underlayIp, port: hostPort.hostPort });
    expect(viaHostPort.received).toBe(viaHostPort.sent);
    expect(viaHostPort.sent).toMatch(/^[0-9a-f]{64} 1048576$/);

    // DEL through the list in reverse: no veth, no allocation, no per-pod NAT chains left
    for (const p of pods.splice(0)) await p.del();
    for (const [i, p] of [pa, pb].entries()) {
      expect((await c.bed.exec(p.node.ns, 'ip', ['-o', 'link', 'show', 'master', 'cni0'])).stdout.trim()).toBe('');
      expect(existsSync(path.join(tmp, `ipam${i}`, 'cbr0'))).toBe(true); // host-local kept its state where the test put it
      expect(existsSync(path.join(tmp, `ipam${i}`, 'cbr0', p.ip))).toBe(false);
      expect((await c.bed.exec(p.node.ns, 'iptables-save', ['-t', 'nat'])).stdout).not.toMatch(/CNI-DN-|CNI-SN-|-A CNI-[0-9a-f]{8,}/);
    }
  });

  it('the lease moves: the conflist is rewritten with the new subnet', async () => {
    const d = c.daemons.at(-2)!; // node 0's running daemon
    const before = JSON.parse(readFileSync(confPath(0), 'utf8')) as ReturnType<typeof renderCniConflist>;
    const old = (before.plugins[0]!.ipam as { ranges: Array<Array<{ subnet: string }>> }).ranges[0]![0]!.subnet;
    // another node takes our subnet in etcd (as a lease revoked under flanneld): tulle moves
    await c.etcd.etcdctl(['put', `${PREFIX}/subnets/${old.replace('/', '-')}`, '{"PublicIP":"198.18.0.77","PublicIPv6":null,"BackendType":"udp"}']);
    const moved = await d.waitLog((l) => l.msg === 'CNI config written' && l.subnet !== old, 60_000);
    const after = readFileSync(confPath(0), 'utf8');
    expect(isTulleConflist(after)).toBe(true);
    expect(JSON.parse(after)).toEqual(renderCniConflist({ network: NETWORK, subnet: String(moved.subnet), mtu: 1472, ipMasq: false }));
    for (const x of c.daemons.filter((x) => x.proc.exitCode === null)) x.proc.kill('SIGTERM');
    for (const x of c.daemons.slice(-2)) expect(await x.exit).toBe(0);
    // kept on stop, as Cilium keeps its file by default: the node stays Ready across a restart
    expect(readFileSync(confPath(0), 'utf8')).toBe(after);
    for (const n of c.bed.nodes) await c.bed.exec(n.ns, 'ip', ['link', 'del', 'cni0']).catch(() => undefined);
  });

  it('wireguard: the conflist carries its MTU, and pods made from it reach each other', async () => {
    const prefix = '/cniconfwg';
    await c.etcd.etcdctl(['put', `${prefix}/config`, `{"Network":"${NETWORK}","Backend":{"Type":"wireguard"}}`]);
    const file = (i: number) => path.join(tmp, `wg${i}`, '10-tulle.conflist');
    const ds = c.bed.nodes.map((n, i) => c.startDaemon(n, [`--etcd-prefix=${prefix}`, `--write-cni-conf-when-ready=${file(i)}`]));
    const subnets = await Promise.all(ds.map((d) => d.readySubnet(120_000)));
    await Promise.all(ds.map((d) => d.waitLog((l) => (l.msg === 'node ready' && l.peers === 1) || (l.msg === 'peers updated' && l.routes === 1), 120_000)));
    const texts = ds.map((_, i) => readFileSync(file(i), 'utf8'));
    for (const [i, d] of ds.entries()) {
      expect(JSON.parse(texts[i]!)).toEqual(renderCniConflist({ network: NETWORK, subnet: subnets[i]!, mtu: await tunMtu(d), ipMasq: false }));
    }
    expect(await tunMtu(ds[0]!)).toBe(1420); // underlay 1500 − 80, as flanneld's wireguard
    const [a, b] = c.bed.nodes as [typeof c.bed.nodes[0], typeof c.bed.nodes[0]];
    const pa = await addPodFromConflist(c.bed, a, 'cfwa', texts[0]!, { ipamDir: path.join(tmp, 'ipamwg0') });
    pods.push(pa);
    const pb = await addPodFromConflist(c.bed, b, 'cfwb', texts[1]!, { ipamDir: path.join(tmp, 'ipamwg1') });
    pods.push(pb);
    await until('the wireguard pods to ping each other', async () => (await ping(c, pa.ns, pb.ip)) && ping(c, pb.ns, pa.ip), 60_000, 200);
    const r = await tcpTransfer(c.bed, pa, pb, 4 << 20);
    expect(r.received).toBe(r.sent);
    expect(r.sent).toMatch(/^[0-9a-f]{64} 4194304$/);
    for (const p of pods.splice(0)) await p.del();
    for (const d of ds) d.proc.kill('SIGTERM');
    for (const d of ds) expect(await d.exit).toBe(0);
  });
});
