/**
 * wireguard Mode "auto": the underlay family of each peer, as flanneld's selectMode picks it
 * (pkg/backend/wireguard/wireguard_network.go). Pure: addresses are only compared, never reached.
 */
import { describe, expect, it } from 'vitest';
import { autoFamily, separateTunnels, tunnelFamily } from '../../src/wireguard/wireguard-backend.js';

const peer = (PublicIP: string, PublicIPv6: string | null) => ({ PublicIP, PublicIPv6, BackendType: 'wireguard' });
const dual = (publicIpv6?: string) => ({ ipv4: true, ipv6: true, publicIpv6 });

describe('Mode auto: per-peer family (flanneld selectMode)', () => {
  // [peer PublicIP, peer PublicIPv6, our PublicIPv6, expected]
  const cases: Array<[string, string | null, string | undefined, 4 | 6, string]> = [
    ['10.0.0.2', null, '2001:db8::1', 4, 'peer without IPv6: IPv4'],
    ['203.0.113.2', '2001:db8::2', '2001:db8::1', 4, 'peer with a public IPv4: IPv4'],
    ['198.18.0.2', 'fd00::2', 'fd00::1', 4, '198.18/15 is not RFC 1918: public for selectMode'],
    ['10.0.0.2', '2001:db8::2', '2001:db8::1', 6, 'private IPv4, both IPv6 public: IPv6'],
    ['172.16.5.2', '2001:db8::2', '2001:db8::1', 6, '172.16/12 is private'],
    ['172.31.5.2', '2001:db8::2', '2001:db8::1', 6, '172.31 is still in 172.16/12'],
    ['172.32.5.2', '2001:db8::2', '2001:db8::1', 4, '172.32 is outside 172.16/12: public IPv4'],
    ['192.168.1.2', '2001:db8::2', '2001:db8::1', 6, '192.168/16 is private'],
    ['10.0.0.2', 'fd00::2', '2001:db8::1', 4, "peer's IPv6 is ULA (fc00::/7): IPv4"],
    ['10.0.0.2', 'fc00::2', '2001:db8::1', 4, 'fc00::/8 is in fc00::/7 too'],
    ['10.0.0.2', 'fe80::2', '2001:db8::1', 6, 'fe80:: is not fc00::/7: public for selectMode'],
    ['10.0.0.2', '2001:db8::2', 'fd00::1', 4, 'our IPv6 is ULA: IPv4'],
    ['10.0.0.2', '2001:db8::2', undefined, 4, 'we have no IPv6 address: IPv4'],
  ];
  it.each(cases)('%s / %s (ours %s) → IPv%s: %s', (ip4, ip6, ours, want) => {
    expect(autoFamily(peer(ip4, ip6), dual(ours))).toBe(want);
    expect(tunnelFamily('auto', dual(ours), peer(ip4, ip6))).toBe(want);
  });

  it('a public IPv4 peer counts only while we have IPv4 (flanneld: an external IPv4 address)', () => {
    expect(autoFamily(peer('203.0.113.2', '2001:db8::2'), { ipv4: false, ipv6: true, publicIpv6: '2001:db8::1' })).toBe(6);
  });

  it('the other Modes: ipv4, ipv6 fixed; separate is two tunnels only in dual stack', () => {
    const p = peer('10.0.0.2', '2001:db8::2');
    expect(tunnelFamily('ipv4', dual('2001:db8::1'), p)).toBe(4);
    expect(tunnelFamily('ipv6', dual('fd00::1'), p)).toBe(6);
    expect(separateTunnels('separate', dual())).toBe(true);
    expect(separateTunnels('separate', { ipv4: true, ipv6: false })).toBe(false);
    expect(separateTunnels('separate', { ipv4: false, ipv6: true })).toBe(false);
    expect(separateTunnels('auto', dual())).toBe(false);
    expect(tunnelFamily('separate', { ipv4: false, ipv6: true }, p)).toBe(6);
  });
});
