/**
 * The Kubernetes registry and the lease manager on the real client library against the
 * API-server double on loopback (no namespaces): the protocol pieces one at a time — waiting for
 * podCIDR, the annotation patch as flanneld sends it, peers from the watch, bookmarks as resume
 * points, 410 Gone (as an ERROR event and as HTTP 410) → re-list and diff, an outage ridden out,
 * POD_NAME lookup, public-ip-overwrite, NetworkUnavailable; dual stack and IPv6 only (both pod
 * CIDRs, the IPv6 annotations per backend, peers, flanneld's errors). The daemons in namespaces
 * are kube-subnet-mgr.test.ts.
 */
import { Writable } from 'node:stream';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { parseNetworkConfig, type NetworkConfig } from '../../src/config/network-config.js';
import type { LeaseAttrs } from '../../src/lease/lease.js';
import type { LeaseTable } from '../../src/lease/lease-diff.js';
import { LeaseManager } from '../../src/lease/lease-manager.js';
import { annotationNames } from '../../src/registry/kube/annotations.js';
import { kubeApi, kubeConfigFor } from '../../src/registry/kube/kube-api.js';
import { kubeRegistry, type KubeRegistry } from '../../src/registry/kube/kube-registry.js';
import type { NodeIdentity } from '../../src/registry/kube/kube-settings.js';
import { realClock } from '../../src/util/clock.js';
import { KubeApiDouble } from '../bed/kube-apiserver.js';
import { until } from './cluster.js';

const P = 'flannel.alpha.coreos.com/';
const flannelUdp = (ip: string) => ({ [`${P}backend-type`]: '', [`${P}backend-data`]: 'null', [`${P}public-ip`]: ip, [`${P}kube-subnet-manager`]: 'true' });
const CONFIG = parseNetworkConfig('{"Network":"10.244.0.0/16","Backend":{"Type":"udp"}}');

interface Setup {
  api: KubeApiDouble;
  reg: KubeRegistry;
  m: LeaseManager;
  logs: Array<{ msg: string; [k: string]: unknown }>;
  table(): LeaseTable;
}
const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0)) await c();
});

async function setup(o: { node?: NodeIdentity; publicIp?: string; listPage?: number; config?: NetworkConfig; attrs?: LeaseAttrs } = {}): Promise<Setup> {
  const api = new KubeApiDouble();
  api.bookmarkMs = 100;
  const { port } = await api.listen('127.0.0.1', 0);
  const logs: Setup['logs'] = [];
  const log = pino({ level: 'debug' }, new Writable({ write(c, _e, cb) { for (const l of String(c).split('\n').filter(Boolean)) logs.push(JSON.parse(l)); cb(); } }));
  const kc = kubeConfigFor({ kind: 'url', apiUrl: `http://127.0.0.1:${port}` });
  const reg = kubeRegistry(
    { access: { kind: 'url', apiUrl: '' }, node: o.node ?? { kind: 'node', name: 'n0' }, names: annotationNames('flannel.alpha.coreos.com'), netConfPath: '/nonexistent', setNodeNetworkUnavailable: true },
    kubeApi(kc), log, undefined, o.listPage,
  );
  let table: LeaseTable = new Map();
  const m = new LeaseManager({
    registry: reg, config: o.config ?? CONFIG, clock: realClock, log, random: Math.random,
    attrs: o.attrs ?? { PublicIP: o.publicIp ?? '198.18.0.10', PublicIPv6: null, BackendType: 'udp' },
    ttlMs: 24 * 3600_000, renewMarginMs: 3600_000, onTable: (t) => (table = new Map(t)),
  });
  cleanups.push(async () => {
    await m.stop();
    await reg.close();
    await api.stop();
  });
  return { api, reg, m, logs, table: () => table };
}

const subnets = (t: LeaseTable) => [...t.keys()].sort();

describe('Kubernetes registry on the client library, against the API-server double', () => {
  it('waits for podCIDR, then writes the annotations as flanneld does: one strategic-merge PATCH of nodes/n0/status', async () => {
    const s = await setup();
    s.api.createNode({ metadata: { name: 'n0' } });
    const acquired = s.m.acquire();
    await until('the wait to be logged', () => s.logs.some((l) => /has no spec.podCIDR yet.*waiting for it \(not ready\)/.test(l.msg)));
    s.api.patchNode('n0', { spec: { podCIDR: '10.244.7.0/24', podCIDRs: ['10.244.7.0/24'] } }, 'merge');
    expect((await acquired).subnet).toBe('10.244.7.0/24');
    expect(s.api.getNode('n0')!.metadata.annotations).toEqual(flannelUdp('198.18.0.10'));
    const patches = s.api.requests.filter((r) => r.method === 'PATCH');
    expect(patches).toEqual([{ method: 'PATCH', path: '/api/v1/nodes/n0/status', contentType: 'application/strategic-merge-patch+json', authorization: undefined, body: { metadata: { annotations: flannelUdp('198.18.0.10') } } }]);
    // acquiring again with everything in place patches nothing
    await s.m.acquire();
    expect(s.api.requests.filter((r) => r.method === 'PATCH')).toHaveLength(1);
  });

  it('a node whose podCIDR lies outside the Network is refused, as flanneld does', async () => {
    const s = await setup();
    s.api.createNode({ metadata: { name: 'n0' }, spec: { podCIDR: '10.99.1.0/24' } });
    await expect(s.m.acquire()).rejects.toThrow(/doesn't contain "10.99.1.0\/24"/);
  });

  it('peers come and go with the Node watch; kubelet status updates change nothing', async () => {
    const s = await setup();
    s.api.createNode({ metadata: { name: 'n0' }, spec: { podCIDR: '10.244.1.0/24' } });
    s.api.createNode({ metadata: { name: 'n1', annotations: flannelUdp('198.18.0.11') }, spec: { podCIDR: '10.244.2.0/24' } });
    await s.m.acquire();
    await s.m.start(); // (resolves once the table is listed)
    expect(subnets(s.table())).toEqual(['10.244.1.0/24', '10.244.2.0/24']);
    s.api.createNode({ metadata: { name: 'n2', annotations: flannelUdp('198.18.0.12') }, spec: { podCIDR: '10.244.3.0/24' } });
    await until('n2 in the table', () => s.table().has('10.244.3.0/24'));
    const before = s.table();
    s.api.patchNode('n1', { status: { conditions: [{ type: 'Ready', status: 'True' }] } }, 'strategic', 'status');
    s.api.deleteNode('n2');
    await until('n2 gone', () => !s.table().has('10.244.3.0/24'));
    expect(s.table().get('10.244.2.0/24')).toBe(before.get('10.244.2.0/24')); // same object: no event for n1
  });

  it('lists in pages (limit/continue) and gets every node', async () => {
    const s = await setup({ listPage: 2 });
    s.api.createNode({ metadata: { name: 'n0' }, spec: { podCIDR: '10.244.1.0/24' } });
    for (let i = 2; i <= 6; i++) s.api.createNode({ metadata: { name: `n${i}`, annotations: flannelUdp(`198.18.0.${i}`) }, spec: { podCIDR: `10.244.${i}.0/24` } });
    const before = s.api.listRequests;
    await s.m.acquire(); // (an assigned subnet: no listing)
    await s.m.start();
    expect(subnets(s.table())).toEqual(['10.244.1.0/24', '10.244.2.0/24', '10.244.3.0/24', '10.244.4.0/24', '10.244.5.0/24', '10.244.6.0/24']);
    expect(s.api.listRequests - before).toBe(3); // 6 nodes, 2 a page
  });

  it('bookmarks move the resume point: a compaction behind it needs no re-list', async () => {
    const s = await setup();
    s.api.createNode({ metadata: { name: 'n0' }, spec: { podCIDR: '10.244.1.0/24' } });
    await s.m.acquire();
    s.m.start();
    await until('the watch', () => s.api.watchCount() === 1);
    // history moves on with no Node event (other kinds of objects change), then is compacted:
    // only a bookmark can carry the watch's resume point past the compaction
    s.api.createPod({ metadata: { namespace: 'default', name: 'p1' }, spec: { nodeName: 'n0' } });
    const rv = s.api.rv;
    await until('a bookmark at or past it', () => s.api.lastBookmarkRv >= rv, 5000);
    s.api.compact();
    await s.api.stop();
    await s.api.start();
    s.api.createNode({ metadata: { name: 'n5', annotations: flannelUdp('198.18.0.15') }, spec: { podCIDR: '10.244.5.0/24' } });
    await until('n5 in the table', () => s.table().has('10.244.5.0/24'));
    expect(s.logs.filter((l) => /resync/.test(l.msg))).toEqual([]);
  });

  for (const goneAs of ['event', 'http'] as const) {
    it(`410 Gone (${goneAs === 'event' ? 'an ERROR event with a 410 Status' : 'HTTP 410'}) → re-list and diff`, async () => {
      const s = await setup();
      s.api.bookmarkMs = 60_000; // no bookmark rescues the resume point here
      s.api.goneAs = goneAs;
      s.api.createNode({ metadata: { name: 'n0' }, spec: { podCIDR: '10.244.1.0/24' } });
      s.api.createNode({ metadata: { name: 'n1', annotations: flannelUdp('198.18.0.11') }, spec: { podCIDR: '10.244.2.0/24' } });
      await s.m.acquire();
      s.m.start();
      await until('the watch', () => s.api.watchCount() === 1);
      await s.api.stop();
      // while the watch is cut: n1 leaves, n3 arrives, history is compacted
      s.api.deleteNode('n1');
      s.api.createNode({ metadata: { name: 'n3', annotations: flannelUdp('198.18.0.13') }, spec: { podCIDR: '10.244.3.0/24' } });
      s.api.compact();
      await s.api.start();
      await until('the table to equal the API', () => JSON.stringify(subnets(s.table())) === '["10.244.1.0/24","10.244.3.0/24"]', 10_000);
      expect(s.logs.some((l) => l.msg === 'lease watch must resync; re-listing' && /410|too old|expired/i.test(String(l.reason)))).toBe(true);
    });
  }

  it('an outage is ridden out with the last table, then the watch resumes', async () => {
    const s = await setup();
    s.api.createNode({ metadata: { name: 'n0' }, spec: { podCIDR: '10.244.1.0/24' } });
    s.api.createNode({ metadata: { name: 'n1', annotations: flannelUdp('198.18.0.11') }, spec: { podCIDR: '10.244.2.0/24' } });
    await s.m.acquire();
    s.m.start();
    await until('the watch', () => s.m.status().etcd === 'connected' && s.api.watchCount() === 1);
    await s.api.stop();
    await until('the manager to see the API away', () => s.m.status().etcd === 'disconnected', 10_000);
    expect(subnets(s.table())).toEqual(['10.244.1.0/24', '10.244.2.0/24']);
    s.api.createNode({ metadata: { name: 'n4', annotations: flannelUdp('198.18.0.14') }, spec: { podCIDR: '10.244.4.0/24' } });
    await s.api.start();
    await until('n4 seen after the outage', () => s.table().has('10.244.4.0/24') && s.m.status().etcd === 'connected', 10_000);
  });

  it('POD_NAME/POD_NAMESPACE: our node is the pod\'s spec.nodeName', async () => {
    const s = await setup({ node: { kind: 'pod', namespace: 'kube-flannel', name: 'kube-flannel-ds-x1' } });
    s.api.createNode({ metadata: { name: 'worker-7' }, spec: { podCIDR: '10.244.9.0/24' } });
    s.api.createPod({ metadata: { namespace: 'kube-flannel', name: 'kube-flannel-ds-x1' }, spec: { nodeName: 'worker-7' } });
    expect((await s.m.acquire()).subnet).toBe('10.244.9.0/24');
    expect(await s.reg.nodeName()).toBe('worker-7');
  });

  it('public-ip-overwrite: peers are told that address, and our own lease is not taken for lost', async () => {
    const s = await setup();
    s.api.createNode({ metadata: { name: 'n0', annotations: { [`${P}public-ip-overwrite`]: '198.18.0.250' } }, spec: { podCIDR: '10.244.1.0/24' } });
    const own = await s.m.acquire();
    s.m.start();
    expect(own.attrs.PublicIP).toBe('198.18.0.250');
    expect(s.api.getNode('n0')!.metadata.annotations[`${P}public-ip`]).toBe('198.18.0.250');
    s.api.createNode({ metadata: { name: 'n1', annotations: flannelUdp('198.18.0.11') }, spec: { podCIDR: '10.244.2.0/24' } });
    await until('n1 seen', () => s.table().has('10.244.2.0/24'));
    expect(s.logs.filter((l) => /re-acquiring/.test(l.msg))).toEqual([]);
  });

  it('NetworkUnavailable is set False with flanneld\'s reason and message', async () => {
    const s = await setup();
    s.api.createNode({ metadata: { name: 'n0' }, spec: { podCIDR: '10.244.1.0/24' }, status: { conditions: [{ type: 'NetworkUnavailable', status: 'True', reason: 'NoRouteCreated' }, { type: 'Ready', status: 'True' }] } });
    await s.reg.nodeReady();
    const conds = s.api.getNode('n0')!.status.conditions as Array<Record<string, string>>;
    expect(conds.map((c) => c.type)).toEqual(['NetworkUnavailable', 'Ready']); // merged by type
    expect(conds[0]).toMatchObject({ status: 'False', reason: 'FlannelIsUp', message: 'Flannel is running on this node' });
  });
});

describe('dual stack and IPv6 only on the Kubernetes registry', () => {
  const DUAL = parseNetworkConfig('{"Network":"10.244.0.0/16","EnableIPv6":true,"IPv6Network":"fd00:10:244::/56","Backend":{"Type":"udp"}}');
  const V6 = parseNetworkConfig('{"EnableIPv4":false,"EnableIPv6":true,"IPv6Network":"fd00:10:244::/56","Backend":{"Type":"wireguard"}}');
  const udpDual = (ip: string, ip6: string) => ({ ...flannelUdp(ip), [`${P}backend-v6-data`]: 'null', [`${P}public-ipv6`]: ip6 });
  const KEY = 'mFcZ1GJMlVJcGvbOjrnv9zjM5rLqzTUKaTJkaL3Vb1E=';
  const dualCidrs = (i: number) => ({ podCIDR: `10.244.${i}.0/24`, podCIDRs: [`10.244.${i}.0/24`, `fd00:10:244:${i}::/64`] });

  it('udp: both pod CIDRs are the lease, six annotations in one patch, peers keyed by both, no re-acquire on our own events', async () => {
    const s = await setup({ config: DUAL, attrs: { PublicIP: '198.18.0.10', PublicIPv6: 'fd00:198:18::10', BackendType: 'udp' } });
    s.api.createNode({ metadata: { name: 'n0' }, spec: dualCidrs(1) });
    s.api.createNode({ metadata: { name: 'n1', annotations: udpDual('198.18.0.11', 'fd00:198:18::11') }, spec: dualCidrs(2) });
    const own = await s.m.acquire();
    await s.m.start(); // (resolves once the table is listed)
    expect({ subnet: own.subnet, ipv6Subnet: own.ipv6Subnet }).toEqual({ subnet: '10.244.1.0/24', ipv6Subnet: 'fd00:10:244:1::/64' });
    const patches = s.api.requests.filter((r) => r.method === 'PATCH');
    expect(patches.map((r) => r.body)).toEqual([{ metadata: { annotations: udpDual('198.18.0.10', 'fd00:198:18::10') } }]);
    expect(s.table().get('10.244.2.0/24')).toMatchObject({ ipv6Subnet: 'fd00:10:244:2::/64', attrs: { PublicIP: '198.18.0.11', PublicIPv6: 'fd00:198:18::11' } });
    s.api.createNode({ metadata: { name: 'n3', annotations: udpDual('198.18.0.13', 'fd00:198:18::13') }, spec: dualCidrs(3) });
    await until('n3 in the table', () => s.table().get('10.244.3.0/24')?.ipv6Subnet === 'fd00:10:244:3::/64');
    // a peer that has no IPv6 pod CIDR cannot be a dual-stack lease: skipped, and said why
    s.api.createNode({ metadata: { name: 'n4', annotations: udpDual('198.18.0.14', 'fd00:198:18::14') }, spec: { podCIDR: '10.244.4.0/24', podCIDRs: ['10.244.4.0/24'] } });
    await until('n4 reported', () => s.logs.some((l) => l.node === 'n4' && /^missing IPv6 address on spec.podCIDRs/.test(String(l.problem))));
    expect(s.table().has('10.244.4.0/24')).toBe(false);
    expect(s.logs.filter((l) => /re-acquiring/.test(l.msg))).toEqual([]);
    await s.m.acquire(); // everything in place: nothing to patch
    expect(s.api.requests.filter((r) => r.method === 'PATCH')).toHaveLength(1);
  });

  it('wireguard, IPv6 only: the IPv6 pod CIDR alone is the lease (0.0.0.0-0&…), backend-v6-data and public-ipv6 written, no public-ip', async () => {
    const data = { PublicKey: KEY, Port: 51821 };
    const s = await setup({ config: V6, attrs: { PublicIP: '0.0.0.0', PublicIPv6: 'fd00:198:18::10', BackendType: 'wireguard', BackendV6Data: data } });
    s.api.createNode({ metadata: { name: 'n0' }, spec: dualCidrs(1) });
    const peer = { [`${P}backend-type`]: 'wireguard', [`${P}backend-v6-data`]: JSON.stringify({ PublicKey: KEY, Port: 51821 }), [`${P}public-ipv6`]: 'fd00:198:18::12', [`${P}kube-subnet-manager`]: 'true' };
    s.api.createNode({ metadata: { name: 'n2', annotations: peer }, spec: { podCIDR: 'fd00:10:244:2::/64', podCIDRs: ['fd00:10:244:2::/64'] } });
    const own = await s.m.acquire();
    await s.m.start(); // (resolves once the table is listed)
    expect({ subnet: own.subnet, ipv6Subnet: own.ipv6Subnet }).toEqual({ subnet: 'fd00:10:244:1::/64', ipv6Subnet: 'fd00:10:244:1::/64' });
    expect(s.api.getNode('n0')!.metadata.annotations).toEqual({
      [`${P}backend-type`]: 'wireguard', [`${P}backend-v6-data`]: '{"PublicKey":"mFcZ1GJMlVJcGvbOjrnv9zjM5rLqzTUKaTJkaL3Vb1E=","Port":51821}',
      [`${P}public-ipv6`]: 'fd00:198:18::10', [`${P}kube-subnet-manager`]: 'true',
    });
    expect(subnets(s.table())).toEqual(['fd00:10:244:1::/64', 'fd00:10:244:2::/64']);
    expect(s.table().get('fd00:10:244:2::/64')!.attrs).toEqual({ PublicIP: '0.0.0.0', PublicIPv6: 'fd00:198:18::12', BackendType: 'wireguard', BackendV6Data: data });
  });

  it('public-ipv6-overwrite: peers are told that address, and our own lease is not taken for lost', async () => {
    const s = await setup({ config: DUAL, attrs: { PublicIP: '198.18.0.10', PublicIPv6: 'fd00:198:18::10', BackendType: 'udp' } });
    s.api.createNode({ metadata: { name: 'n0', annotations: { [`${P}public-ipv6-overwrite`]: 'fd00:198:18::250' } }, spec: dualCidrs(1) });
    const own = await s.m.acquire();
    await s.m.start(); // (resolves once the table is listed)
    expect(own.attrs.PublicIPv6).toBe('fd00:198:18::250');
    expect(s.api.getNode('n0')!.metadata.annotations[`${P}public-ipv6`]).toBe('fd00:198:18::250');
    s.api.createNode({ metadata: { name: 'n1', annotations: udpDual('198.18.0.11', 'fd00:198:18::11') }, spec: dualCidrs(2) });
    await until('n1 seen', () => s.table().has('10.244.2.0/24'));
    expect(s.logs.filter((l) => /re-acquiring/.test(l.msg))).toEqual([]);
  });

  it('IPv4-only wireguard on a node with an IPv6 address: our lease is what peers read (no PublicIPv6), not taken for lost', async () => {
    const WG = parseNetworkConfig('{"Network":"10.244.0.0/16","Backend":{"Type":"wireguard"}}');
    const data = { PublicKey: KEY, Port: 51820 };
    // as node.ts makes them: wireguard carries PublicIPv6 whenever the node has one (flanneld's ExtV6Addr)
    const s = await setup({ config: WG, attrs: { PublicIP: '198.18.0.10', PublicIPv6: 'fd00:198:18::10', BackendType: 'wireguard', BackendData: data } });
    s.api.createNode({ metadata: { name: 'n0' }, spec: dualCidrs(1) });
    const own = await s.m.acquire();
    await s.m.start(); // (resolves once the table is listed)
    expect(own.attrs).toEqual({ PublicIP: '198.18.0.10', PublicIPv6: null, BackendType: 'wireguard', BackendData: data });
    expect(Object.keys(s.api.getNode('n0')!.metadata.annotations)).not.toContain(`${P}public-ipv6`);
    s.api.patchNode('n0', { status: { conditions: [{ type: 'Ready', status: 'True' }] } }, 'strategic', 'status');
    s.api.createNode({ metadata: { name: 'n1', annotations: flannelUdp('198.18.0.11') }, spec: dualCidrs(2) });
    await until('n1 seen', () => s.table().has('10.244.2.0/24'));
    expect(s.logs.filter((l) => /re-acquiring/.test(l.msg))).toEqual([]);
  });

  const refusals: Array<[string, object, RegExp]> = [
    ['three pod CIDRs', { podCIDR: '10.244.1.0/24', podCIDRs: ['10.244.1.0/24', 'fd00:10:244:1::/64', '10.244.9.0/24'] }, /^node "n0" pod cidrs should be IPv4\/IPv6 only or dualstack/],
    ['no IPv6 pod CIDR', { podCIDR: '10.244.1.0/24', podCIDRs: ['10.244.1.0/24'] }, /^missing IPv6 address on spec.podCIDRs/],
    ['an IPv6 pod CIDR outside IPv6Network', { podCIDR: '10.244.1.0/24', podCIDRs: ['10.244.1.0/24', 'fd00:99::/64'] }, /doesn't contain "fd00:99::\/64", this node's IPv6 PodCIDR/],
  ];
  for (const [what, spec, error] of refusals) {
    it(`refused as flanneld refuses it, and nothing written: ${what}`, async () => {
      const s = await setup({ config: DUAL, attrs: { PublicIP: '198.18.0.10', PublicIPv6: 'fd00:198:18::10', BackendType: 'udp' } });
      s.api.createNode({ metadata: { name: 'n0' }, spec });
      await expect(s.m.acquire()).rejects.toMatchObject({ code: 'ERR_TULLE_POD_CIDR', message: expect.stringMatching(error) });
      expect(s.api.requests.filter((r) => r.method === 'PATCH')).toEqual([]);
    });
  }
});
