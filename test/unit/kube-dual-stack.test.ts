/**
 * Dual stack and IPv6 only in the Kubernetes mapping, as flanneld's pkg/subnet/kube/kube.go does
 * them, written out by hand from its source: which pod CIDRs and annotations make a peer's lease
 * (nodeToLease with EnableIPv4/EnableIPv6), which annotations a node writes for each backend
 * (AcquireLease's BackendType conditions), the errors (three pod CIDRs, a missing family, a pod
 * CIDR outside the network), and the node watch with both families.
 */
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { parseNetworkConfig } from '../../src/config/network-config.js';
import { AssignedSubnet } from '../../src/lease/assigned-subnet.js';
import { decodeLeaseValue } from '../../src/lease/lease.js';
import type { Assignment, Registry } from '../../src/registry/registry.js';
import { annotationNames } from '../../src/registry/kube/annotations.js';
import { familyCidrs, nodeEntry, ownAnnotations, podCidrs, type Families, type KubeNode } from '../../src/registry/kube/node-lease.js';
import { nodeEvents, type KnownLeases } from '../../src/registry/kube/node-watch.js';

const N = annotationNames('flannel.alpha.coreos.com');
const P = 'flannel.alpha.coreos.com/';
const KEY = 'mFcZ1GJMlVJcGvbOjrnv9zjM5rLqzTUKaTJkaL3Vb1E=';
const WG4 = `{"PublicKey":"${KEY}","Port":51820}`;
const DUAL: Families = { ipv4: true, ipv6: true };
const V6ONLY: Families = { ipv4: false, ipv6: true };

function node(name: string, podCIDRs: string[], annotations: Record<string, string> = {}, rv = '5'): KubeNode {
  return { metadata: { name, resourceVersion: rv, annotations }, spec: { podCIDR: podCIDRs[0], podCIDRs } };
}
/** a dual-stack udp node as tulle writes it (flanneld's udp backend is IPv4 only: see ownAnnotations) */
const udpDual = (ip: string, ip6: string) => ({
  [`${P}backend-type`]: '', [`${P}backend-data`]: 'null', [`${P}public-ip`]: ip,
  [`${P}backend-v6-data`]: 'null', [`${P}public-ipv6`]: ip6, [`${P}kube-subnet-manager`]: 'true',
});
/** a dual-stack wireguard node as flanneld writes it */
const wgDual = (ip: string, ip6: string) => ({
  [`${P}backend-type`]: 'wireguard', [`${P}backend-data`]: WG4, [`${P}public-ip`]: ip,
  [`${P}backend-v6-data`]: `{"PublicKey":"${KEY}","Port":51821}`, [`${P}public-ipv6`]: ip6, [`${P}kube-subnet-manager`]: 'true',
});

describe('pod CIDRs (spec.podCIDRs, else spec.podCIDR)', () => {
  it('one per family, either order, masked; podCIDR alone may be IPv6', () => {
    expect(podCidrs({ spec: { podCIDRs: ['fd00:10:244:3::9/64', '10.244.3.9/24'] } })).toEqual({ ok: true, ipv4: '10.244.3.0/24', ipv6: 'fd00:10:244:3::/64' });
    expect(podCidrs({ spec: { podCIDR: 'fd00:10:244:3::/64' } })).toEqual({ ok: true, ipv6: 'fd00:10:244:3::/64' });
    expect(podCidrs({ spec: {} })).toBeUndefined();
  });

  it('three or more is flanneld\'s error, naming the node and the entries', () => {
    const p = podCidrs({ metadata: { name: 'n7' }, spec: { podCIDRs: ['10.244.1.0/24', 'fd00:10:244:1::/64', '10.244.2.0/24'] } });
    expect(p).toEqual({ ok: false, problem: 'node "n7" pod cidrs should be IPv4/IPv6 only or dualstack (spec.podCIDRs has 3 entries: 10.244.1.0/24, fd00:10:244:1::/64, 10.244.2.0/24)' });
  });

  it('a family the network enables but the node lacks: flanneld\'s "missing IPv6 address on …"', () => {
    expect(familyCidrs(node('n1', ['10.244.1.0/24']), DUAL)).toMatchObject({ ok: false, problem: expect.stringMatching(/^missing IPv6 address on spec.podCIDRs \(node "n1" has 10.244.1.0\/24; the network config enables IPv6\)$/) });
    expect(familyCidrs(node('n1', ['fd00:10:244:1::/64']), DUAL)).toMatchObject({ ok: false, problem: expect.stringMatching(/^missing IPv4 address/) });
    // a family the network does not enable is not part of the lease
    expect(familyCidrs(node('n1', ['10.244.1.0/24', 'fd00:10:244:1::/64']), V6ONLY)).toEqual({ ok: true, subnets: { subnet: 'fd00:10:244:1::/64', ipv6Subnet: 'fd00:10:244:1::/64' } });
  });
});

describe('node → lease (nodeToLease) with IPv6', () => {
  it('dual stack, wireguard as flanneld writes it: both subnets in the key, PublicIPv6, BackendV6Data', () => {
    const e = nodeEntry(node('a', ['10.244.3.0/24', 'fd00:10:244:3::/64'], wgDual('198.18.0.10', 'fd00:198:18::10')), N, DUAL);
    expect(e).toMatchObject({ kind: 'lease', name: '10.244.3.0-24&fd00:10:244:3::-64' });
    if (e.kind !== 'lease') throw new Error('not a lease');
    expect(JSON.parse(e.value)).toEqual({
      PublicIP: '198.18.0.10', PublicIPv6: 'fd00:198:18::10', BackendType: 'wireguard',
      BackendData: { PublicKey: KEY, Port: 51820 }, BackendV6Data: { PublicKey: KEY, Port: 51821 },
    });
  });

  it('dual stack, udp: "null" data on both families is no BackendData at all', () => {
    const e = nodeEntry(node('a', ['10.244.3.0/24', 'fd00:10:244:3::/64'], udpDual('198.18.0.10', 'fd00:198:18::10')), N, DUAL);
    if (e.kind !== 'lease') throw new Error('not a lease');
    expect(decodeLeaseValue(e.value)).toEqual({ ok: true, attrs: { PublicIP: '198.18.0.10', PublicIPv6: 'fd00:198:18::10', BackendType: 'udp' } });
  });

  it('IPv6 only: key 0.0.0.0-0&<v6>, PublicIP 0.0.0.0 (flanneld\'s zero address), the IPv4 annotations not read', () => {
    const a = { [`${P}backend-type`]: 'wireguard', [`${P}backend-v6-data`]: WG4, [`${P}public-ipv6`]: 'fd00:198:18::10', [`${P}kube-subnet-manager`]: 'true' };
    const e = nodeEntry(node('a', ['fd00:10:244:3::/64']), N, V6ONLY);
    expect(e).toEqual({ kind: 'none' }); // not managed yet
    const m = nodeEntry(node('a', ['fd00:10:244:3::/64'], a), N, V6ONLY);
    expect(m).toMatchObject({ kind: 'lease', name: '0.0.0.0-0&fd00:10:244:3::-64' });
    if (m.kind !== 'lease') throw new Error('not a lease');
    expect(JSON.parse(m.value)).toEqual({ PublicIP: '0.0.0.0', PublicIPv6: 'fd00:198:18::10', BackendType: 'wireguard', BackendV6Data: { PublicKey: KEY, Port: 51820 } });
  });

  it('IPv4 only: public-ipv6 and backend-v6-data are not read (flanneld reads them only with EnableIPv6)', () => {
    const e = nodeEntry(node('a', ['10.244.3.0/24', 'fd00:10:244:3::/64'], wgDual('198.18.0.10', 'fd00:198:18::10')), N);
    if (e.kind !== 'lease') throw new Error('not a lease');
    expect(e.name).toBe('10.244.3.0-24');
    expect(JSON.parse(e.value)).toEqual({ PublicIP: '198.18.0.10', PublicIPv6: null, BackendType: 'wireguard', BackendData: { PublicKey: KEY, Port: 51820 } });
  });

  it('bad: no IPv6 pod CIDR, no or a bad public-ipv6, backend-v6-data not JSON, three pod CIDRs', () => {
    const v4only = nodeEntry(node('a', ['10.244.3.0/24'], udpDual('198.18.0.10', 'fd00:198:18::10')), N, DUAL);
    expect(v4only).toMatchObject({ kind: 'bad', problem: expect.stringMatching(/^missing IPv6 address on spec.podCIDRs/) });
    const cidrs = ['10.244.3.0/24', 'fd00:10:244:3::/64'];
    const { [`${P}public-ipv6`]: _, ...noV6 } = udpDual('198.18.0.10', 'x');
    expect(nodeEntry(node('a', cidrs, noV6), N, DUAL)).toEqual({ kind: 'bad', problem: `annotation ${P}public-ipv6 is not an IPv6 address: null` });
    expect(nodeEntry(node('a', cidrs, udpDual('198.18.0.10', '198.18.0.10')), N, DUAL)).toMatchObject({ kind: 'bad', problem: expect.stringMatching(/public-ipv6 is not an IPv6 address: "198.18.0.10"/) });
    expect(nodeEntry(node('a', cidrs, { ...udpDual('198.18.0.10', 'fd00::1'), [`${P}backend-v6-data`]: '{' }), N, DUAL)).toMatchObject({ kind: 'bad', problem: `annotation ${P}backend-v6-data is not JSON` });
    expect(nodeEntry(node('a', [...cidrs, '10.244.9.0/24'], udpDual('198.18.0.10', 'fd00::1')), N, DUAL)).toMatchObject({ kind: 'bad', problem: expect.stringMatching(/pod cidrs should be IPv4\/IPv6 only or dualstack/) });
  });
});

describe('lease → our annotations (AcquireLease) with IPv6', () => {
  const cidrs = ['10.244.3.0/24', 'fd00:10:244:3::/64'];

  it('wireguard, dual stack: all six, the IPv6 pair from BackendV6Data and PublicIPv6', () => {
    const attrs = { PublicIP: '198.18.0.10', PublicIPv6: 'fd00:198:18::10', BackendType: 'wireguard', BackendData: JSON.parse(WG4), BackendV6Data: JSON.parse(WG4) };
    expect(ownAnnotations(node('a', cidrs), attrs, N, DUAL).patch).toEqual({
      [`${P}backend-type`]: 'wireguard', [`${P}backend-data`]: WG4, [`${P}public-ip`]: '198.18.0.10',
      [`${P}backend-v6-data`]: WG4, [`${P}public-ipv6`]: 'fd00:198:18::10', [`${P}kube-subnet-manager`]: 'true',
    });
  });

  it('wireguard, IPv6 only: backend-data is "null", so neither it nor public-ip is written (flanneld\'s condition)', () => {
    const attrs = { PublicIP: '0.0.0.0', PublicIPv6: 'fd00:198:18::10', BackendType: 'wireguard', BackendV6Data: JSON.parse(WG4) };
    expect(ownAnnotations(node('a', ['fd00:10:244:3::/64']), attrs, N, V6ONLY).patch).toEqual({
      [`${P}backend-type`]: 'wireguard', [`${P}backend-v6-data`]: WG4, [`${P}public-ipv6`]: 'fd00:198:18::10', [`${P}kube-subnet-manager`]: 'true',
    });
  });

  it('wireguard, IPv4 only with an IPv6 address: no BackendV6Data, so no IPv6 annotations', () => {
    const attrs = { PublicIP: '198.18.0.10', PublicIPv6: 'fd00:198:18::10', BackendType: 'wireguard', BackendData: JSON.parse(WG4) };
    expect(Object.keys(ownAnnotations(node('a', cidrs), attrs, N).patch)).toEqual([`${P}backend-type`, `${P}backend-data`, `${P}public-ip`, `${P}kube-subnet-manager`]);
  });

  it('udp: dual stack adds backend-v6-data "null" and public-ipv6; IPv6 only writes public-ip 0.0.0.0 as flanneld', () => {
    const dual = { PublicIP: '198.18.0.10', PublicIPv6: 'fd00:198:18::10', BackendType: 'udp' };
    expect(ownAnnotations(node('a', cidrs), dual, N, DUAL).patch).toEqual(udpDual('198.18.0.10', 'fd00:198:18::10'));
    // IPv4 only: flanneld's four, whatever IPv6 address the node has
    expect(Object.keys(ownAnnotations(node('a', cidrs), dual, N).patch)).toHaveLength(4);
    const v6 = { PublicIP: '0.0.0.0', PublicIPv6: 'fd00:198:18::10', BackendType: 'udp' };
    expect(ownAnnotations(node('a', ['fd00:10:244:3::/64']), v6, N, V6ONLY).patch).toEqual({
      [`${P}backend-type`]: '', [`${P}backend-data`]: 'null', [`${P}public-ip`]: '0.0.0.0',
      [`${P}backend-v6-data`]: 'null', [`${P}public-ipv6`]: 'fd00:198:18::10', [`${P}kube-subnet-manager`]: 'true',
    });
  });

  it('public-ipv6-overwrite wins and is what peers see; a bad one is not used', () => {
    const attrs = { PublicIP: '198.18.0.10', PublicIPv6: 'fd00:198:18::10', BackendType: 'udp' };
    const r = ownAnnotations(node('a', cidrs, { [`${P}public-ipv6-overwrite`]: 'fd00:198:18::200' }), attrs, N, DUAL);
    expect(r.patch[`${P}public-ipv6`]).toBe('fd00:198:18::200');
    expect(r.stored.PublicIPv6).toBe('fd00:198:18::200');
    const bad = ownAnnotations(node('a', cidrs, { [`${P}public-ipv6-overwrite`]: '198.18.0.1' }), attrs, N, DUAL);
    expect(bad.badOverwriteV6).toBe('198.18.0.1');
    expect(bad.patch[`${P}public-ipv6`]).toBe('fd00:198:18::10');
  });

  it('what a node writes, a peer reads back as the same lease (both backends, both shapes)', () => {
    const cases: Array<[Families, string[], object]> = [
      [DUAL, cidrs, { PublicIP: '198.18.0.10', PublicIPv6: 'fd00:198:18::10', BackendType: 'udp' }],
      [DUAL, cidrs, { PublicIP: '198.18.0.10', PublicIPv6: 'fd00:198:18::10', BackendType: 'wireguard', BackendData: JSON.parse(WG4), BackendV6Data: JSON.parse(WG4) }],
      [V6ONLY, ['fd00:10:244:3::/64'], { PublicIP: '0.0.0.0', PublicIPv6: 'fd00:198:18::10', BackendType: 'udp' }],
      [V6ONLY, ['fd00:10:244:3::/64'], { PublicIP: '0.0.0.0', PublicIPv6: 'fd00:198:18::10', BackendType: 'wireguard', BackendV6Data: JSON.parse(WG4) }],
    ];
    for (const [f, c, attrs] of cases) {
      const w = ownAnnotations(node('a', c), attrs as never, N, f);
      const e = nodeEntry(node('a', c, w.patch), N, f);
      if (e.kind !== 'lease') throw new Error(`not a lease: ${JSON.stringify(e)}`);
      expect(decodeLeaseValue(e.value)).toEqual({ ok: true, attrs });
    }
  });
});

describe('node events with both families', () => {
  it('a node gaining its IPv6 pod CIDR becomes a lease; its IPv6 address changing is a put', () => {
    const known: KnownLeases = new Map();
    const bad: string[] = [];
    const onBad = (_n: KubeNode, p: string) => void bad.push(p);
    expect(nodeEvents('ADDED', node('a', ['10.244.3.0/24'], udpDual('198.18.0.10', 'fd00::10'), '10'), known, N, onBad, DUAL)).toEqual([]);
    expect(bad[0]).toMatch(/missing IPv6 address/);
    expect(nodeEvents('MODIFIED', node('a', ['10.244.3.0/24', 'fd00:10:244:3::/64'], udpDual('198.18.0.10', 'fd00::10'), '11'), known, N, onBad, DUAL))
      .toMatchObject([{ type: 'put', name: '10.244.3.0-24&fd00:10:244:3::-64', modRevision: 11 }]);
    const ev = nodeEvents('MODIFIED', node('a', ['10.244.3.0/24', 'fd00:10:244:3::/64'], udpDual('198.18.0.10', 'fd00::20'), '12'), known, N, onBad, DUAL);
    expect(ev).toHaveLength(1);
    expect(JSON.parse((ev[0] as { value: string }).value).PublicIPv6).toBe('fd00::20');
    expect(nodeEvents('DELETED', node('a', [], {}, '13'), known, N, onBad, DUAL)).toEqual([{ type: 'delete', name: '10.244.3.0-24&fd00:10:244:3::-64', modRevision: 13 }]);
  });
});

describe('our assigned subnets against the network config (AcquireLease)', () => {
  const log = pino({ level: 'silent' });
  const reg = (a: Assignment) => ({ assignedSubnet: async () => a }) as unknown as Registry;
  const dual = parseNetworkConfig('{"Network":"10.244.0.0/16","EnableIPv6":true,"IPv6Network":"fd00:10:244::/56","Backend":{"Type":"udp"}}');
  const v6 = parseNetworkConfig('{"EnableIPv4":false,"EnableIPv6":true,"IPv6Network":"fd00:10:244::/56","Backend":{"Type":"udp"}}');

  it('dual stack takes both; IPv6 only takes the IPv6 one (an IPv4 pod CIDR beside it is not part of the lease)', async () => {
    expect(await new AssignedSubnet(reg({ ipv4: '10.244.3.0/24', ipv6: 'fd00:10:244:3::/64' }), dual, log).ask()).toEqual({ subnet: '10.244.3.0/24', ipv6Subnet: 'fd00:10:244:3::/64' });
    expect(await new AssignedSubnet(reg({ ipv4: '10.244.3.0/24', ipv6: 'fd00:10:244:3::/64' }), v6, log).ask()).toEqual({ subnet: 'fd00:10:244:3::/64', ipv6Subnet: 'fd00:10:244:3::/64' });
  });

  it('refuses, naming it: an IPv6 pod CIDR outside IPv6Network, a missing family, three pod CIDRs', async () => {
    await expect(new AssignedSubnet(reg({ ipv4: '10.244.3.0/24', ipv6: 'fd00:99::/64' }), dual, log).ask())
      .rejects.toThrow('subnet "fd00:10:244::/56" specified in the network config doesn\'t contain "fd00:99::/64", this node\'s IPv6 PodCIDR');
    await expect(new AssignedSubnet(reg({ ipv4: '10.244.3.0/24' }), dual, log).ask()).rejects.toThrow(/^missing IPv6 address on spec.podCIDRs: this node's pod CIDRs are 10.244.3.0\/24, but the network config enables IPv6 \(EnableIPv6\)/);
    await expect(new AssignedSubnet(reg({ ipv6: 'fd00:10:244:3::/64' }), dual, log).ask()).rejects.toThrow(/^missing IPv4 address on spec.podCIDRs/);
    await expect(new AssignedSubnet(reg({ refused: 'node "n0" pod cidrs should be IPv4/IPv6 only or dualstack' }), dual, log).ask()).rejects.toMatchObject({ code: 'ERR_TULLE_POD_CIDR' });
  });
});
