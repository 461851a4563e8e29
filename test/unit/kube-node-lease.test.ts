/**
 * The Kubernetes mapping as pure functions: annotation names from the prefix (flanneld's
 * annotations.go), node → lease (nodeToLease), lease → the annotations this node writes
 * (AcquireLease, public-ip-overwrite), node events → lease events, the NetworkUnavailable patch.
 */
import { describe, expect, it } from 'vitest';
import { annotationNames } from '../../src/registry/kube/annotations.js';
import { networkAvailablePatchBody } from '../../src/registry/kube/node-condition.js';
import { ipv4PodCidr, nodeEntry, ownAnnotations, type KubeNode } from '../../src/registry/kube/node-lease.js';
import { nodeEvents, type KnownLeases } from '../../src/registry/kube/node-watch.js';
import { decodeLeaseValue } from '../../src/lease/lease.js';

const N = annotationNames('flannel.alpha.coreos.com');
const P = 'flannel.alpha.coreos.com/';
const WG_DATA = '{"PublicKey":"mFcZ1GJMlVJcGvbOjrnv9zjM5rLqzTUKaTJkaL3Vb1E=","Port":51820}';

function node(name: string, podCIDR: string | undefined, annotations: Record<string, string> = {}, rv = '5'): KubeNode {
  return { metadata: { name, resourceVersion: rv, annotations }, spec: podCIDR ? { podCIDR, podCIDRs: [podCIDR] } : {} };
}
const flannelUdp = (ip: string) => ({ [`${P}backend-type`]: '', [`${P}backend-data`]: 'null', [`${P}public-ip`]: ip, [`${P}kube-subnet-manager`]: 'true' });

describe('annotation names (flanneld annotations.go)', () => {
  it('default prefix, a prefix with a slash, and flanneld\'s refusals', () => {
    expect(N.publicIp).toBe('flannel.alpha.coreos.com/public-ip');
    expect(N.kubeSubnetManager).toBe('flannel.alpha.coreos.com/kube-subnet-manager');
    expect(N.publicIpOverwrite).toBe('flannel.alpha.coreos.com/public-ip-overwrite');
    expect(annotationNames('example.com/net').backendData).toBe('example.com/net-backend-data');
    expect(annotationNames('example.com/net-').backendType).toBe('example.com/net-backend-type');
    expect(annotationNames('example.com/').publicIp).toBe('example.com/public-ip');
    expect(() => annotationNames('a/b/c')).toThrow(/at most single slash/);
    expect(() => annotationNames('nodots')).toThrow(/fqdn/);
    expect(() => annotationNames('Upper.Case')).toThrow(/--kube-annotation-prefix/);
  });
});

describe('node → lease (nodeToLease)', () => {
  it('a flanneld udp node: backend-type "" and backend-data "null" are a udp lease without BackendData', () => {
    const e = nodeEntry(node('a', '10.244.3.0/24', flannelUdp('198.18.0.10')), N);
    expect(e).toMatchObject({ kind: 'lease', subnets: { subnet: '10.244.3.0/24' }, name: '10.244.3.0-24' });
    if (e.kind !== 'lease') throw new Error('not a lease');
    expect(decodeLeaseValue(e.value)).toEqual({ ok: true, attrs: { PublicIP: '198.18.0.10', PublicIPv6: null, BackendType: 'udp' } });
  });

  it('a wireguard node carries its key and port in BackendData', () => {
    const e = nodeEntry(node('a', '10.244.4.0/24', { ...flannelUdp('198.18.0.11'), [`${P}backend-type`]: 'wireguard', [`${P}backend-data`]: WG_DATA }), N);
    if (e.kind !== 'lease') throw new Error('not a lease');
    expect(e.attrs).toEqual({ PublicIP: '198.18.0.11', PublicIPv6: null, BackendType: 'wireguard', BackendData: JSON.parse(WG_DATA) });
  });

  it('not a lease: no kube-subnet-manager "true", no podCIDR; bad: public-ip or backend-data unusable', () => {
    const { [`${P}kube-subnet-manager`]: _, ...unmanaged } = flannelUdp('198.18.0.10');
    expect(nodeEntry(node('a', '10.244.3.0/24', unmanaged), N)).toEqual({ kind: 'none' });
    expect(nodeEntry(node('a', '10.244.3.0/24', { ...flannelUdp('198.18.0.10'), [`${P}kube-subnet-manager`]: 'false' }), N)).toEqual({ kind: 'none' });
    expect(nodeEntry(node('a', undefined, flannelUdp('198.18.0.10')), N)).toEqual({ kind: 'none' });
    expect(nodeEntry(node('a', '10.244.3.0/24', flannelUdp('nope')), N)).toMatchObject({ kind: 'bad', problem: expect.stringMatching(/public-ip/) });
    expect(nodeEntry(node('a', '10.244.3.0/24', { ...flannelUdp('198.18.0.10'), [`${P}backend-data`]: '{' }), N)).toMatchObject({ kind: 'bad', problem: expect.stringMatching(/backend-data/) });
  });

  it('pod CIDRs as flanneld reads them: the first IPv4 of podCIDRs, masked; more than two refused', () => {
    expect(ipv4PodCidr({ spec: { podCIDR: 'fd00:1::/64', podCIDRs: ['fd00:1::/64', '10.244.7.0/24'] } })).toEqual({ ok: true, subnet: '10.244.7.0/24' });
    expect(ipv4PodCidr({ spec: { podCIDR: '10.244.7.9/24' } })).toEqual({ ok: true, subnet: '10.244.7.0/24' });
    expect(ipv4PodCidr({ spec: { podCIDRs: ['fd00:1::/64'] } })).toMatchObject({ ok: false, problem: expect.stringMatching(/IPv4/) });
    expect(ipv4PodCidr({ spec: { podCIDRs: ['10.244.1.0/24', 'fd00::/64', '10.244.2.0/24'] } })).toMatchObject({ ok: false });
    expect(ipv4PodCidr({ spec: { podCIDR: 'x' } })).toMatchObject({ ok: false, problem: expect.stringMatching(/not a prefix/) });
    expect(ipv4PodCidr({ spec: {} })).toBeUndefined();
  });
});

describe('lease → our annotations (AcquireLease)', () => {
  it('a bare node gets the four annotations flanneld writes, exactly (udp)', () => {
    const r = ownAnnotations(node('a', '10.244.3.0/24'), { PublicIP: '198.18.0.10', PublicIPv6: null, BackendType: 'udp' }, N);
    expect(r.patch).toEqual({ [`${P}backend-type`]: '', [`${P}backend-data`]: 'null', [`${P}public-ip`]: '198.18.0.10', [`${P}kube-subnet-manager`]: 'true' });
    expect(r.stored.PublicIP).toBe('198.18.0.10');
  });

  it('wireguard: backend-data is the JSON flanneld marshals ({"PublicKey","Port"})', () => {
    const attrs = { PublicIP: '198.18.0.10', PublicIPv6: null, BackendType: 'wireguard', BackendData: JSON.parse(WG_DATA) };
    expect(ownAnnotations(node('a', '10.244.3.0/24'), attrs, N).patch).toEqual({
      [`${P}backend-type`]: 'wireguard', [`${P}backend-data`]: WG_DATA, [`${P}public-ip`]: '198.18.0.10', [`${P}kube-subnet-manager`]: 'true',
    });
  });

  it('only what differs is patched; nothing when all is right', () => {
    const attrs = { PublicIP: '198.18.0.10', PublicIPv6: null, BackendType: 'udp' };
    expect(ownAnnotations(node('a', '10.244.3.0/24', flannelUdp('198.18.0.10')), attrs, N).patch).toEqual({});
    expect(ownAnnotations(node('a', '10.244.3.0/24', flannelUdp('198.18.0.99')), attrs, N).patch).toEqual({ [`${P}public-ip`]: '198.18.0.10' });
  });

  it('public-ip-overwrite wins over our address and is what peers see; a bad one is not used', () => {
    const attrs = { PublicIP: '198.18.0.10', PublicIPv6: null, BackendType: 'udp' };
    const r = ownAnnotations(node('a', '10.244.3.0/24', { [`${P}public-ip-overwrite`]: '198.18.0.200' }), attrs, N);
    expect(r.patch[`${P}public-ip`]).toBe('198.18.0.200');
    expect(r.stored.PublicIP).toBe('198.18.0.200');
    const bad = ownAnnotations(node('a', '10.244.3.0/24', { [`${P}public-ip-overwrite`]: 'x' }), attrs, N);
    expect(bad.badOverwrite).toBe('x');
    expect(bad.patch[`${P}public-ip`]).toBe('198.18.0.10');
  });
});

describe('node events → lease events', () => {
  const onBad = () => undefined;
  it('added, unchanged status update (nothing), annotations changed, unmanaged, deleted', () => {
    const known: KnownLeases = new Map();
    const a = node('a', '10.244.3.0/24', flannelUdp('198.18.0.10'), '10');
    expect(nodeEvents('ADDED', a, known, N, onBad)).toMatchObject([{ type: 'put', name: '10.244.3.0-24', modRevision: 10 }]);
    expect(nodeEvents('MODIFIED', { ...a, metadata: { ...a.metadata, resourceVersion: '11' } }, known, N, onBad)).toEqual([]);
    expect(nodeEvents('MODIFIED', node('a', '10.244.3.0/24', flannelUdp('198.18.0.20'), '12'), known, N, onBad)).toMatchObject([{ type: 'put', modRevision: 12 }]);
    expect(nodeEvents('MODIFIED', node('a', '10.244.3.0/24', {}, '13'), known, N, onBad)).toEqual([{ type: 'delete', name: '10.244.3.0-24', modRevision: 13 }]);
    nodeEvents('MODIFIED', node('a', '10.244.3.0/24', flannelUdp('198.18.0.20'), '14'), known, N, onBad);
    expect(nodeEvents('DELETED', node('a', '10.244.3.0/24', flannelUdp('198.18.0.20'), '15'), known, N, onBad)).toEqual([{ type: 'delete', name: '10.244.3.0-24', modRevision: 15 }]);
    expect(known.size).toBe(0);
    expect(nodeEvents('DELETED', node('b', '10.244.9.0/24', {}, '16'), known, N, onBad)).toEqual([]);
  });

  it('two nodes with one pod CIDR: the subnet stays while one still has it', () => {
    const known: KnownLeases = new Map();
    nodeEvents('ADDED', node('a', '10.244.3.0/24', flannelUdp('198.18.0.10')), known, N, onBad);
    nodeEvents('ADDED', node('b', '10.244.3.0/24', flannelUdp('198.18.0.11')), known, N, onBad);
    expect(nodeEvents('DELETED', node('a', '10.244.3.0/24'), known, N, onBad)).toEqual([]);
  });
});

describe('NetworkUnavailable (CompleteLease)', () => {
  it('is the strategic-merge status patch flanneld sends: False, FlannelIsUp, times in RFC 3339 seconds', () => {
    expect(JSON.stringify(networkAvailablePatchBody(new Date('2026-12-03T06:30:12.345Z')))).toBe(
      '{"status":{"conditions":[{"type":"NetworkUnavailable","status":"False","lastHeartbeatTime":"2026-12-03T06:30:12Z","lastTransitionTime":"2026-12-03T06:30:12Z","reason":"FlannelIsUp","message":"Flannel is running on this node"}]}}',
    );
  });
});
