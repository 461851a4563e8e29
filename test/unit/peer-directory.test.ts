import { describe, expect, it } from 'vitest';
import { udpBackend } from '../../src/backend/udp-backend.js';
import { decodeLeaseValue, type Lease } from '../../src/lease/lease.js';
import { diffLeases } from '../../src/lease/lease-diff.js';
import { PeerDirectory } from '../../src/lease/peer-directory.js';

const noStart = () => {
  throw new Error('not in unit tests');
};
const lease = (subnet: string, ip: string, type = 'udp', rev = 1): Lease => ({
  subnet, modRevision: rev, attrs: { PublicIP: ip, PublicIPv6: null, BackendType: type },
});
const table = (...ls: Lease[]) => new Map(ls.map((l) => [l.subnet, l]));

describe('lease diff', () => {
  it('reports added, changed and removed', () => {
    const a = table(lease('10.244.1.0/24', '1.1.1.1'), lease('10.244.2.0/24', '1.1.1.2'));
    const b = table(lease('10.244.2.0/24', '1.1.1.9'), lease('10.244.3.0/24', '1.1.1.3'));
    const d = diffLeases(a, b);
    expect(d.added.map((l) => l.subnet)).toEqual(['10.244.3.0/24']);
    expect(d.changed.map((l) => l.subnet)).toEqual(['10.244.2.0/24']);
    expect(d.removed.map((l) => l.subnet)).toEqual(['10.244.1.0/24']);
    expect(diffLeases(a, new Map(a))).toEqual({ added: [], changed: [], removed: [] });
  });
});

describe('peer directory', () => {
  it('a separate IPv6 tunnel (wireguard Mode "separate"): the IPv4 subnet to one peer, the IPv6 subnet to another, each counted', () => {
    // a backend with flanneld's two tunnels: IPv6 to [PublicIPv6]:51821, none without a PublicIPv6
    const separate = {
      peerOf: (l: Lease) => ({
        ok: true as const, endpoint: { address: l.attrs.PublicIP, port: 51820 },
        ipv6Endpoint: l.attrs.PublicIPv6 ? { address: l.attrs.PublicIPv6, port: 51821 } : null,
      }),
    };
    const dual = (ip6: string | null, rev = 1): Lease => ({
      subnet: '10.244.2.0/24', ipv6Subnet: 'fd00:10:244:2::/64', modRevision: rev, attrs: { PublicIP: '198.18.0.11', PublicIPv6: ip6, BackendType: 'wireguard' },
    });
    const dir = new PeerDirectory(separate);
    expect(dir.update(table(dual('fd00:198:18::11')), undefined).commands).toEqual([
      { op: 'setPeer', peer: 1, address: '198.18.0.11', port: 51820 },
      { op: 'setPeer', peer: 2, address: 'fd00:198:18::11', port: 51821 },
      { op: 'setRoute', subnet: '10.244.2.0/24', peer: 1 },
      { op: 'setRoute', subnet: 'fd00:10:244:2::/64', peer: 2 },
    ]);
    expect(dir.peerList().map((p) => [p.id, p.subnets])).toEqual([[1, ['10.244.2.0/24']], [2, ['fd00:10:244:2::/64']]]);
    expect(dir.routeCount).toBe(2);
    expect(dir.update(table(dual('fd00:198:18::11', 2)), undefined).commands).toEqual([]);
    // the peer loses its PublicIPv6: its IPv6 subnet has no tunnel left, and the IPv6 peer goes
    expect(dir.update(table(dual(null, 3)), undefined).commands).toEqual([
      { op: 'setRoute', subnet: '10.244.2.0/24', peer: 1 },
      { op: 'deleteRoute', subnet: 'fd00:10:244:2::/64' },
      { op: 'deletePeer', peer: 2 },
    ]);
    expect(dir.peerCount).toBe(1);
    // the lease goes: both
    expect(dir.update(table(), undefined).commands).toEqual([{ op: 'deleteRoute', subnet: '10.244.2.0/24' }, { op: 'deletePeer', peer: 1 }]);
    expect(dir.peerCount).toBe(0);
  });

  it('turns leases into peers and routes, skipping our own subnet', () => {
    const dir = new PeerDirectory(udpBackend(8285, noStart));
    const u = dir.update(table(lease('10.244.1.0/24', '198.18.0.10'), lease('10.244.2.0/24', '198.18.0.11')), '10.244.1.0/24');
    expect(u.commands).toEqual([
      { op: 'setPeer', peer: 1, address: '198.18.0.11', port: 8285 },
      { op: 'setRoute', subnet: '10.244.2.0/24', peer: 1 },
    ]);
    expect(dir.update(table(lease('10.244.1.0/24', '198.18.0.10'), lease('10.244.2.0/24', '198.18.0.11')), '10.244.1.0/24').commands).toEqual([]);
  });

  it('lists each peer with the subnets routed to it, as the data plane holds them (tulle status, wg show)', () => {
    const dir = new PeerDirectory(udpBackend(8285, noStart));
    // two leases at one endpoint (a node that moved and left its old lease behind) share a peer
    dir.update(table(lease('10.244.2.0/24', '198.18.0.11'), lease('10.244.3.0/24', '198.18.0.12'), lease('10.244.4.0/24', '198.18.0.11')), undefined);
    expect(dir.peerList()).toEqual([
      { id: 1, endpoint: { address: '198.18.0.11', port: 8285 }, subnets: ['10.244.2.0/24', '10.244.4.0/24'] },
      { id: 2, endpoint: { address: '198.18.0.12', port: 8285 }, subnets: ['10.244.3.0/24'] },
    ]);
    dir.update(table(lease('10.244.3.0/24', '198.18.0.12')), undefined);
    expect(dir.peerList()).toEqual([{ id: 2, endpoint: { address: '198.18.0.12', port: 8285 }, subnets: ['10.244.3.0/24'] }]);
  });

  it('applies diffs: new peer, moved endpoint, removal', () => {
    const dir = new PeerDirectory(udpBackend(8285, noStart));
    dir.update(table(lease('10.244.2.0/24', '198.18.0.11'), lease('10.244.3.0/24', '198.18.0.12')), undefined);
    const moved = dir.update(table(lease('10.244.2.0/24', '198.18.0.11'), lease('10.244.3.0/24', '198.18.0.13')), undefined);
    expect(moved.commands).toEqual([
      { op: 'setPeer', peer: 3, address: '198.18.0.13', port: 8285 },
      { op: 'setRoute', subnet: '10.244.3.0/24', peer: 3 },
      { op: 'deletePeer', peer: 2 },
    ]);
    const gone = dir.update(table(lease('10.244.3.0/24', '198.18.0.13')), undefined);
    expect(gone.commands).toEqual([{ op: 'deleteRoute', subnet: '10.244.2.0/24' }, { op: 'deletePeer', peer: 1 }]);
    expect(dir.snapshot()).toEqual({ '10.244.3.0/24': '198.18.0.13:8285' });
    // the freed id is reused
    expect(dir.update(table(lease('10.244.3.0/24', '198.18.0.13'), lease('10.244.4.0/24', '198.18.0.14')), undefined).commands[0]).toEqual({
      op: 'setPeer', peer: 1, address: '198.18.0.14', port: 8285,
    });
  });

  it('skips leases of another backend type, reporting each once', () => {
    const dir = new PeerDirectory(udpBackend(8285, noStart));
    const t = table(lease('10.244.2.0/24', '198.18.0.11', 'vxlan'), lease('10.244.3.0/24', '198.18.0.12'));
    const first = dir.update(t, undefined);
    expect(first.skipped.map((s) => s.lease.subnet)).toEqual(['10.244.2.0/24']);
    expect(first.skipped[0]!.reason).toMatch(/vxlan/);
    expect(first.commands.filter((c) => c.op === 'setRoute')).toHaveLength(1);
    expect(dir.update(t, undefined).skipped).toEqual([]);
    // a changed lease of the wrong type is reported again
    expect(dir.update(table(lease('10.244.2.0/24', '198.18.0.11', 'vxlan', 2), lease('10.244.3.0/24', '198.18.0.12')), undefined).skipped).toHaveLength(1);
  });

  it("routes leases written by flannel's own udp backend (no BackendType field)", () => {
    const d = decodeLeaseValue('{"PublicIP":"198.18.0.20","PublicIPv6":null}');
    if (!d.ok) throw new Error(d.problem);
    const dir = new PeerDirectory(udpBackend(8285, noStart));
    const u = dir.update(table({ subnet: '10.244.20.0/24', attrs: d.attrs, modRevision: 1 }), undefined);
    expect(u.skipped).toEqual([]);
    expect(u.commands).toContainEqual({ op: 'setRoute', subnet: '10.244.20.0/24', peer: 1 });
  });

  it('shares one peer between subnets on one endpoint', () => {
    const dir = new PeerDirectory(udpBackend(8285, noStart));
    const u = dir.update(table(lease('10.244.2.0/24', '198.18.0.11'), lease('10.244.3.0/24', '198.18.0.11')), undefined);
    expect(u.commands.filter((c) => c.op === 'setPeer')).toHaveLength(1);
    expect(dir.peerCount).toBe(1);
  });
});
