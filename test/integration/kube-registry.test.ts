/**
 * The Kubernetes registry and the lease manager on the real client library against the
 * API-server double on loopback (no namespaces): the protocol pieces one at a time — waiting for
 * podCIDR, the annotation patch as flanneld sends it, peers from the watch, bookmarks as resume
 * points, 410 Gone (as an ERROR event and as HTTP 410) → re-list and diff, an outage ridden out,
 * POD_NAME lookup, public-ip-overwrite, NetworkUnavailable. The daemons in namespaces are
 * kube-subnet-mgr.test.ts.
 */
import { Writable } from 'node:stream';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { parseNetworkConfig } from '../../src/config/network-config.js';
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

async function setup(o: { node?: NodeIdentity; publicIp?: string; listPage?: number } = {}): Promise<Setup> {
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
    registry: reg, config: CONFIG, clock: realClock, log, random: Math.random,
    attrs: { PublicIP: o.publicIp ?? '198.18.0.10', PublicIPv6: null, BackendType: 'udp' },
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
