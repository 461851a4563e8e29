/**
 * `tulle run --kube-subnet-mgr`: three real daemons in namespaces against the Kubernetes
 * API-server double (test/bed/kube-apiserver.ts) on the underlay, through the real client
 * library — not a live cluster. Default flags but for what the mode needs (--kube-subnet-mgr,
 * where the API is, --net-config-path, --iface) and NODE_NAME or POD_NAME/POD_NAMESPACE; one
 * daemon uses --kubeconfig-file (with a bearer token), the others --kube-api-url.
 *
 *   udp mesh · annotations exactly as flanneld writes them · NetworkUnavailable=False ·
 *   a node annotated the flanneld way (by the test) is routed to, and its daemon finds nothing
 *   to change · a node deleted · the API server stopped 30 s under a ping stream (no loss; a
 *   node added meanwhile is seen after) · the same nodes switched to wireguard
 *
 * Dual stack (its own bed: a dual-stack underlay, two nodes, spec.podCIDRs with both families):
 * udp, then wireguard — annotations as flanneld writes them (and tulle's IPv6 pair for udp),
 * subnet.env with the IPv6 pair, /healthz under kubeApi, IPv4 and IPv6 ping both ways.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BedNode } from '../bed/bed.js';
import { startKubeApiServer, type RemoteKubeApi } from '../bed/kube-apiserver-process.js';
import type { Obj } from '../bed/kube-apiserver.js';
import { createCluster, tunAddress, until, type Cluster, type Daemon } from './cluster.js';

const P = 'flannel.alpha.coreos.com/';
const TOKEN = 'tulle-test-token';
const flannelUdp = (ip: string) => ({ [`${P}backend-type`]: '', [`${P}backend-data`]: 'null', [`${P}public-ip`]: ip, [`${P}kube-subnet-manager`]: 'true' });

let c: Cluster;
let api: RemoteKubeApi;
let dir: string;
let netConf: string;
const ds: Daemon[] = [];
const podCidr = (i: number) => `10.244.${i + 1}.0/24`;
const nodeName = (i: number) => `node-${i}`;

function kubeNode(i: number, n: BedNode, annotations: Record<string, string> = {}): Obj {
  return {
    metadata: { name: nodeName(i), labels: { 'kubernetes.io/os': 'linux' }, annotations },
    spec: { podCIDR: podCidr(i), podCIDRs: [podCidr(i)] },
    status: { addresses: [{ type: 'InternalIP', address: n.underlayIp }], conditions: [{ type: 'NetworkUnavailable', status: 'True', reason: 'NoRouteCreated', message: 'Node created without a route' }] },
  };
}

/** Starts the daemon of node i; how it finds the API and its node name vary by node. */
function start(i: number, o: { health?: boolean } = {}): Daemon {
  const n = c.bed.nodes[i]!;
  const common = ['--kube-subnet-mgr', `--net-config-path=${netConf}`, '--iface=eth0'];
  if (i === 0) return c.startDaemon(n, [...common, `--kubeconfig-file=${dir}/kubeconfig`], { ...process.env, NODE_NAME: nodeName(i) }, { bare: true, ...o });
  if (i === 1) {
    return c.startDaemon(n, [...common, `--kube-api-url=${api.url}`], { ...process.env, POD_NAME: 'kube-flannel-ds-n1', POD_NAMESPACE: 'kube-flannel' }, { bare: true, ...o });
  }
  return c.startDaemon(n, [...common], { ...process.env, NODE_NAME: nodeName(i), FLANNELD_KUBE_API_URL: api.url }, { bare: true, ...o });
}

async function mesh(from: Daemon[], to: Daemon[]): Promise<string[]> {
  const failures: string[] = [];
  await Promise.all(from.flatMap((a) => to.filter((b) => b !== a).map(async (b) => {
    const i = ds.indexOf(b);
    const r = await c.ping(a.node, tunAddress(podCidr(i)));
    if (!r.ok) failures.push(`${a.node.ns} → ${b.node.ns}`);
  })));
  return failures;
}

beforeAll(async () => {
  c = await createCluster({ nodes: 4, tag: 'kube', config: '' });
  dir = mkdtempSync(path.join(tmpdir(), 'tulle-kube-'));
  netConf = path.join(dir, 'net-conf.json');
  writeFileSync(netConf, '{"Network":"10.244.0.0/16","Backend":{"Type":"udp"}}');
  const apiHost = await c.bed.addHost('kapi', 3);
  api = await startKubeApiServer({ bed: c.bed, ns: apiHost.ns, ip: apiHost.underlayIp });
  writeFileSync(`${dir}/kubeconfig`, [
    'apiVersion: v1', 'kind: Config', 'current-context: test',
    'clusters:', `- name: double`, '  cluster:', `    server: ${api.url}`,
    'users:', '- name: tulle', '  user:', `    token: ${TOKEN}`,
    'contexts:', '- name: test', '  context:', '    cluster: double', '    user: tulle',
  ].join('\n'));
  for (const [i, n] of c.bed.nodes.slice(0, 3).entries()) await api.createNode(kubeNode(i, n));
  await api.call('createPod', { metadata: { namespace: 'kube-flannel', name: 'kube-flannel-ds-n1' }, spec: { nodeName: nodeName(1) } });
});

afterAll(async () => {
  await c?.teardown();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('tulle run --kube-subnet-mgr against the API-server double', () => {
  it('udp: each daemon takes its podCIDR, annotates its node exactly as flanneld does, and the three reach each other', async () => {
    for (let i = 0; i < 3; i++) ds.push(start(i, { health: i === 0 }));
    expect(await Promise.all(ds.map((d) => d.readySubnet()))).toEqual([0, 1, 2].map(podCidr));
    for (const [i, d] of ds.entries()) {
      const node = (await api.getNode(nodeName(i)))!;
      expect(node.metadata.annotations).toEqual(flannelUdp(d.node.underlayIp));
      // NetworkUnavailable set False as flanneld does (--set-node-network-unavailable defaults to true)
      await until(`${nodeName(i)}'s NetworkUnavailable condition`, async () => (await api.getNode(nodeName(i)))!.status.conditions[0].status === 'False');
      expect((await api.getNode(nodeName(i)))!.status.conditions[0]).toMatchObject({ type: 'NetworkUnavailable', reason: 'FlannelIsUp', message: 'Flannel is running on this node' });
    }
    const patches = (await api.requests()).filter((r) => r.method === 'PATCH');
    // per node: the annotations, then the condition; all strategic-merge patches of nodes/NAME/status
    expect(patches.map((r) => `${r.path} ${r.contentType}`).sort()).toEqual(
      [0, 1, 2].flatMap((i) => Array(2).fill(`/api/v1/nodes/${nodeName(i)}/status application/strategic-merge-patch+json`)),
    );
    const n0 = patches.filter((r) => r.path === `/api/v1/nodes/${nodeName(0)}/status`);
    expect(n0[0]!.body).toEqual({ metadata: { annotations: flannelUdp(ds[0]!.node.underlayIp) } });
    expect(n0.every((r) => r.authorization === `Bearer ${TOKEN}`)).toBe(true); // from --kubeconfig-file
    await until('every node to route to the other two', () => ds.every((d) => d.routeCount() === 2));
    expect(await mesh(ds, ds)).toEqual([]);
    // the store's state under its own name: the Kubernetes API, not etcd
    const h = await c.health(ds[0]!);
    expect(h).toMatchObject({ state: 'running', ready: true, backend: 'udp', kubeApi: { kubeApi: 'connected' } });
    expect(h).not.toHaveProperty('etcd');
  });

  it('a node annotated the flanneld way is routed to; its own daemon then finds nothing to change', async () => {
    const n3 = c.bed.nodes[3]!;
    await api.createNode(kubeNode(3, n3));
    // as flanneld writes them (its strategic-merge patch of the status subresource)
    await api.patchNode(nodeName(3), { metadata: { annotations: flannelUdp(n3.underlayIp) } }, 'strategic', 'status');
    await until('every node to route to node-3 (from its annotations alone)', () => ds.every((d) => d.routeCount() === 3));
    const before = (await api.requests()).length;
    const d3 = start(3);
    ds.push(d3);
    expect(await d3.readySubnet()).toBe(podCidr(3));
    await until('node-3 condition set', async () => (await api.getNode(nodeName(3)))!.status.conditions[0].status === 'False');
    const mine = (await api.requests()).slice(before).filter((r) => r.method === 'PATCH' && r.path === `/api/v1/nodes/${nodeName(3)}/status`);
    expect(mine.map((r) => Object.keys(r.body as Obj))).toEqual([['status']]); // the condition only: no annotation patch
    await until('node-3 to route to the others', () => d3.routeCount() === 3);
    expect(await mesh([d3], ds)).toEqual([]);
    expect(await mesh(ds.slice(0, 3), [d3])).toEqual([]);
  });

  it('a node deleted from the API: its route disappears everywhere', async () => {
    const d3 = ds.pop()!;
    d3.proc.kill('SIGTERM');
    expect(await d3.exit).toBe(0);
    await api.deleteNode(nodeName(3));
    await until('the route to node-3 to go', () => ds.every((d) => d.routeCount() === 2));
    expect(podCidr(3) in (await c.health(ds[0]!)).routes).toBe(false);
    expect((await c.ping(ds[0]!.node, tunAddress(podCidr(3)), 1, 1)).ok).toBe(false);
  });

  it('a node without podCIDR yet is waited for (not ready, one log line), then joins when it gets one', async () => {
    const n3 = c.bed.nodes[3]!;
    const bare = kubeNode(3, n3);
    bare.spec = {};
    await api.createNode(bare);
    const d = start(3);
    await d.waitLog((l) => /node "node-3" has no spec.podCIDR yet.*waiting for it \(not ready\)/.test(l.msg));
    expect(d.logs.some((l) => l.msg === 'node ready')).toBe(false);
    expect(d.proc.exitCode).toBeNull();
    // kube-controller-manager assigns it
    await api.patchNode(nodeName(3), { spec: { podCIDR: podCidr(3), podCIDRs: [podCidr(3)] } }, 'strategic');
    expect(await d.readySubnet()).toBe(podCidr(3));
    await until('everyone to route to it', () => ds.every((x) => x.routeCount() === 3));
    d.proc.kill('SIGTERM');
    expect(await d.exit).toBe(0);
    await api.deleteNode(nodeName(3));
    await until('its route gone', () => ds.every((x) => x.routeCount() === 2));
  });

  it('the API server stopped for 30 s under a ping stream: no loss, the last table kept, the watch resumes after', async () => {
    const [a, b] = ds as [Daemon, Daemon];
    // 200 pings, 0.2 s apart (40 s), each with a 2 s deadline
    const ping = c.bed.exec(a.node.ns, 'ping', ['-n', '-q', '-i', '0.2', '-c', '200', '-W', '2', tunAddress(podCidr(1))], 60_000);
    await new Promise((r) => setTimeout(r, 3000));
    await api.stop();
    const stoppedAt = Date.now();
    await until('node A to report the API away', async () => (await c.health(a)).kubeApi.kubeApi === 'disconnected', 15_000, 200);
    // meanwhile a node joins the cluster, annotated the flanneld way (no daemon: a route only)
    await api.createNode({ ...kubeNode(9, c.bed.nodes[3]!, flannelUdp('198.18.0.99')) });
    await new Promise((r) => setTimeout(r, Math.max(0, 30_000 - (Date.now() - stoppedAt))));
    expect(Object.keys((await c.health(a)).routes)).toHaveLength(2);
    expect(b.routeCount()).toBe(2);
    expect(b.proc.exitCode).toBeNull();
    await api.start();
    await until('every node to see the node added during the outage', () => ds.every((d) => d.routeCount() === 3), 30_000);
    expect((await c.health(a)).kubeApi.kubeApi).toBe('connected');
    const { stdout } = await ping;
    expect(stdout).toMatch(/200 packets transmitted, 200 received, 0% packet loss/);
    await api.deleteNode(nodeName(9));
    await until('its route gone', () => ds.every((d) => d.routeCount() === 2));
  });

  it('wireguard: the same nodes restarted with Type wireguard write backend-type and the key as flanneld, and reach each other', async () => {
    for (const d of ds) d.proc.kill('SIGTERM');
    for (const d of ds) expect(await d.exit).toBe(0);
    writeFileSync(netConf, '{"Network":"10.244.0.0/16","Backend":{"Type":"wireguard"}}');
    for (let i = 0; i < 3; i++) ds[i] = start(i);
    expect(await Promise.all(ds.map((d) => d.readySubnet()))).toEqual([0, 1, 2].map(podCidr));
    for (const [i, d] of ds.entries()) {
      const a = (await api.getNode(nodeName(i)))!.metadata.annotations as Record<string, string>;
      expect(Object.keys(a).sort()).toEqual(Object.keys(flannelUdp('x')).sort());
      expect(a).toMatchObject({ [`${P}backend-type`]: 'wireguard', [`${P}public-ip`]: d.node.underlayIp, [`${P}kube-subnet-manager`]: 'true' });
      expect(a[`${P}backend-data`]).toMatch(/^\{"PublicKey":"[A-Za-z0-9+/]{43}=","Port":51820\}$/);
    }
    await until('every node to route to the other two', () => ds.every((d) => d.routeCount() === 2));
    await until('a full wireguard mesh', async () => (await mesh(ds, ds)).length === 0, 30_000, 500);
  });
});

/**
 * One bed per stack: dual (a dual-stack underlay; spec.podCIDRs with both families) and IPv6 only
 * (an IPv6-only underlay, the API server reached over IPv6; IPv6 pod CIDRs alone).
 */
describe.each(['dual', 'only'] as const)('IPv6 with --kube-subnet-mgr (%s): two nodes in namespaces, both backends', (stack) => {
  const V6NET = 'fd00:10:244::/56';
  const conf6 = (type: string) => JSON.stringify(stack === 'dual'
    ? { Network: '10.244.0.0/16', EnableIPv6: true, IPv6Network: V6NET, Backend: { Type: type } }
    : { EnableIPv4: false, EnableIPv6: true, IPv6Network: V6NET, Backend: { Type: type } });
  /** node i's pod CIDRs, as kube-controller-manager assigns them for the stack */
  const cidrs = (i: number) => [...(stack === 'dual' ? [`10.244.${i + 1}.0/24`] : []), `fd00:10:244:${i + 1}::/64`];
  let k: Cluster;
  let kapi: RemoteKubeApi;
  let kdir: string;
  let conf: string;
  let nodes: Daemon[] = [];

  const startNode = (i: number): Daemon =>
    k.startDaemon(k.bed.nodes[i]!, ['--kube-subnet-mgr', `--kube-api-url=${kapi.url}`, `--net-config-path=${conf}`, '--iface=eth0'], { ...process.env, NODE_NAME: nodeName(i) }, { bare: true, health: i === 0 });

  /** every node pings every other's TUN address in each family; the failures */
  async function mesh6(): Promise<string[]> {
    const failures: string[] = [];
    for (const [from, to] of [[0, 1], [1, 0]] as const) {
      for (const addr of cidrs(to).map(tunAddress)) {
        const p = await k.ping(k.bed.nodes[from]!, addr, 2, 3);
        if (!p.ok) failures.push(`${k.bed.nodes[from]!.ns} → ${addr}: ${p.out}`);
      }
    }
    return failures;
  }

  /** the annotations flanneld writes for the backend and stack (and, for udp, tulle's IPv6 pair) */
  function expectAnnotations(a: Record<string, string>, type: 'udp' | 'wireguard', n: BedNode): void {
    const v4 = stack === 'dual' ? n.underlayIp : '0.0.0.0';
    if (type === 'udp') {
      // flanneld's udp backend is IPv4 only and writes no IPv6 pair: tulle adds it, so peers can read the lease
      expect(a).toEqual({ ...flannelUdp(v4), [`${P}backend-v6-data`]: 'null', [`${P}public-ipv6`]: n.underlayIp6 });
      return;
    }
    // wireguard: backend-data and public-ip only with IPv4 (flanneld's condition: backend-data not "null")
    const keys = [`${P}backend-type`, `${P}backend-v6-data`, `${P}public-ipv6`, `${P}kube-subnet-manager`, ...(stack === 'dual' ? [`${P}backend-data`, `${P}public-ip`] : [])];
    expect(Object.keys(a).sort()).toEqual(keys.sort());
    expect(a).toMatchObject({ [`${P}backend-type`]: 'wireguard', [`${P}public-ipv6`]: n.underlayIp6, [`${P}kube-subnet-manager`]: 'true' });
    expect(a[`${P}backend-v6-data`]).toMatch(/^\{"PublicKey":"[A-Za-z0-9+/]{43}=","Port":5182[01]\}$/);
    if (stack === 'dual') {
      expect(a[`${P}public-ip`]).toBe(n.underlayIp);
      expect(JSON.parse(a[`${P}backend-v6-data`]!).PublicKey).toBe(JSON.parse(a[`${P}backend-data`]!).PublicKey);
    }
  }

  beforeAll(async () => {
    k = await createCluster({ nodes: 2, tag: stack === 'dual' ? 'kd' : 'k6', config: '', ipv6: stack });
    kdir = mkdtempSync(path.join(tmpdir(), 'tulle-kube-v6-'));
    conf = path.join(kdir, 'net-conf.json');
    const apiHost = await k.bed.addHost('kapi', 3);
    kapi = await startKubeApiServer({ bed: k.bed, ns: apiHost.ns, ip: apiHost.underlayIp });
  }, 240_000);

  /** the Node objects afresh, unannotated (a node keeps annotations no backend writes any more, as with flanneld) */
  async function freshNodes(): Promise<void> {
    for (const [i, n] of k.bed.nodes.entries()) {
      await kapi.deleteNode(nodeName(i));
      await kapi.createNode({ metadata: { name: nodeName(i), annotations: {} }, spec: { podCIDR: cidrs(i)[0], podCIDRs: cidrs(i) }, status: { addresses: [{ type: 'InternalIP', address: n.underlayIp }] } });
    }
  }

  afterAll(async () => {
    for (const d of nodes) if (d.proc.exitCode === null) d.proc.kill('SIGTERM');
    for (const d of nodes) await d.exit;
    await k?.teardown();
    if (kdir) rmSync(kdir, { recursive: true, force: true });
  }, 60_000);

  for (const type of ['udp', 'wireguard'] as const) {
    it(`${type}: the pod CIDRs are the lease, the annotations as flanneld's, subnet.env's IPv6 pair, ping in each family both ways`, async () => {
      for (const d of nodes) d.proc.kill('SIGTERM');
      for (const d of nodes) expect(await d.exit).toBe(0);
      writeFileSync(conf, conf6(type));
      await freshNodes();
      nodes = [startNode(0), startNode(1)];
      // (readySubnet reads an IPv4 FLANNEL_SUBNET: IPv6 only has none, so the 'node ready' line)
      const ready = (d: Daemon) => (stack === 'dual' ? d.readySubnet() : d.waitLog((l) => l.msg === 'node ready', 90_000).then((l) => String(l.subnet)));
      expect(await Promise.all(nodes.map(ready))).toEqual([0, 1].map((i) => cidrs(i)[0]));
      for (const [i, d] of nodes.entries()) {
        expectAnnotations((await kapi.getNode(nodeName(i)))!.metadata.annotations as Record<string, string>, type, d.node);
        const env = readFileSync(`${d.dir}/subnet.env`, 'utf8');
        expect(env).toContain(`FLANNEL_IPV6_NETWORK=${V6NET}\n`);
        expect(env).toContain(`FLANNEL_IPV6_SUBNET=${tunAddress(cidrs(i).at(-1)!)}1/64\n`);
        expect(env.includes('FLANNEL_SUBNET=')).toBe(stack === 'dual');
      }
      const h = await k.health(nodes[0]!);
      expect(h).toMatchObject({ state: 'running', backend: type, lease: { subnet: cidrs(0)[0], ipv6Subnet: cidrs(0).at(-1) }, kubeApi: { kubeApi: 'connected' } });
      await until('node 0 to route to node 1 in each family', async () => Object.keys((await k.health(nodes[0]!)).routes).sort().join() === [...cidrs(1)].sort().join(), 30_000, 200);
      await until(`a full ${type} mesh in each family`, async () => (await mesh6()).length === 0, 30_000, 500);
      expect(await mesh6()).toEqual([]);
    }, 180_000);
  }
});
