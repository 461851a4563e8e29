import { describe, expect, it } from 'vitest';
import { decodeLeaseValue, type LeaseAttrs, encodeLeaseValue, firstAddress, leaseKeyName, parseLeaseKeyName } from '../../src/lease/lease.js';

describe('lease codec', () => {
  it("writes flanneld's udp value for plain mode: no BackendType (its udp backend leaves it empty; omitempty)", () => {
    const flanneld = '{"PublicIP":"198.18.0.10","PublicIPv6":null}';
    expect(encodeLeaseValue({ PublicIP: '198.18.0.10', PublicIPv6: null, BackendType: 'udp' })).toBe(flanneld);
    expect(decodeLeaseValue(flanneld)).toEqual({ ok: true, attrs: { PublicIP: '198.18.0.10', PublicIPv6: null, BackendType: 'udp' } });
    // what tulle wrote before, with the type spelt out, still reads as udp
    expect(decodeLeaseValue('{"PublicIP":"198.18.0.10","PublicIPv6":null,"BackendType":"udp"}')).toEqual(decodeLeaseValue(flanneld));
  });

  it('round-trips BackendData and key names', () => {
    const attrs = { PublicIP: '1.2.3.4', PublicIPv6: null, BackendType: 'wireguard', BackendData: { PublicKey: 'k', Port: 51820 } };
    expect(decodeLeaseValue(encodeLeaseValue(attrs))).toEqual({ ok: true, attrs });
    expect(leaseKeyName({ subnet: '10.244.3.0/24' })).toBe('10.244.3.0-24');
    expect(parseLeaseKeyName('10.244.3.0-24')).toEqual({ subnet: '10.244.3.0/24', ipv6Subnet: undefined });
    expect(parseLeaseKeyName('10.244.3.0-24&fc00::-64')).toEqual({ subnet: '10.244.3.0/24', ipv6Subnet: 'fc00::/64' });
  });

  it('accepts what flannel omits (empty BackendType)', () => {
    expect(decodeLeaseValue('{"PublicIP":"1.2.3.4"}')).toEqual({ ok: true, attrs: { PublicIP: '1.2.3.4', PublicIPv6: null, BackendType: 'udp' } });
  });

  it.each(['', 'garbage', '[]', 'null', '{"PublicIP":5}', '{"PublicIP":"1.2.3"}', '{"PublicIP":"1.2.3.4","PublicIPv6":"x"}', '{"PublicIP":"1.2.3.4","BackendType":3}'])(
    'says what is wrong with %j instead of throwing',
    (v) => {
      const d = decodeLeaseValue(v);
      expect(d.ok).toBe(false);
    },
  );

  it.each(['garbage', '10.244.3.0', '10.244.3.1-24', '10.244.3.0-33', '300.1.1.0-24', '10.244.3.0-24x'])('rejects key %s', (k) => {
    expect(parseLeaseKeyName(k)).toBeUndefined();
  });

  it("matches a value's keys as Go's decoder does in flanneld: exact name, else any case; a later key wins; other keys ignored", () => {
    expect(decodeLeaseValue('{"publicip":"198.18.0.10","publicIPv6":"fd00::10","backendType":"wireguard","backenddata":{"PublicKey":"k"},"Other":1}')).toEqual({
      ok: true, attrs: { PublicIP: '198.18.0.10', PublicIPv6: 'fd00::10', BackendType: 'wireguard', BackendData: { PublicKey: 'k' } },
    });
    expect(decodeLeaseValue('{"PublicIP":"198.18.0.1","publicip":"198.18.0.2"}')).toMatchObject({ attrs: { PublicIP: '198.18.0.2' } });
    expect(decodeLeaseValue('{"Public_IP":"198.18.0.1"}')).toEqual({ ok: false, problem: 'PublicIP is not an IPv4 address' });
  });

  it('writes FLANNEL_SUBNET as the first address with the length', () => {
    expect(firstAddress('10.244.3.0/24')).toBe('10.244.3.1/24');
  });

  it("reads and writes flanneld's dual-stack and IPv6-only keys (pkg/subnet MakeSubnetKey / ParseSubnetKey)", () => {
    const dual = { subnet: '10.244.3.0/24', ipv6Subnet: 'fd00:10:244:3::/64' };
    expect(leaseKeyName(dual)).toBe('10.244.3.0-24&fd00:10:244:3::-64');
    expect(parseLeaseKeyName('10.244.3.0-24&fd00:10:244:3::-64')).toEqual(dual);
    // IPv6 only: flanneld's empty IPv4 subnet is 0.0.0.0/0; the lease is known by its IPv6 subnet
    const v6 = { subnet: 'fd00:10:244:3::/64', ipv6Subnet: 'fd00:10:244:3::/64' };
    expect(leaseKeyName(v6)).toBe('0.0.0.0-0&fd00:10:244:3::-64');
    expect(parseLeaseKeyName('0.0.0.0-0&fd00:10:244:3::-64')).toEqual(v6);
    // flanneld's regexp takes lower-case hex only; 0.0.0.0-0 alone is no lease; host bits are no subnet
    for (const k of ['0.0.0.0-0', '10.244.3.0-24&FD00::-64', '10.244.3.0-24&fd00::1-64', '10.244.3.0-24&fd00::-129', '10.244.3.0-24&::-0', '10.244.3.0-24&zz::-64']) {
      expect(parseLeaseKeyName(k), k).toBeUndefined();
    }
  });

  it("round-trips flanneld's dual-stack wireguard value: PublicIPv6, BackendData then BackendV6Data", () => {
    // what flanneld's wireguard backend writes (json.Marshal of lease.LeaseAttrs), by hand
    const flanneld = '{"PublicIP":"198.18.0.10","PublicIPv6":"fd00:198:18::10","BackendType":"wireguard",' +
      '"BackendData":{"PublicKey":"k","Port":51820},"BackendV6Data":{"PublicKey":"k","Port":51821}}';
    const d = decodeLeaseValue(flanneld);
    expect(d).toEqual({ ok: true, attrs: {
      PublicIP: '198.18.0.10', PublicIPv6: 'fd00:198:18::10', BackendType: 'wireguard',
      BackendData: { PublicKey: 'k', Port: 51820 }, BackendV6Data: { PublicKey: 'k', Port: 51821 },
    } });
    expect(encodeLeaseValue((d as { attrs: LeaseAttrs }).attrs)).toBe(flanneld);
    // IPv6 only: PublicIP 0.0.0.0, no BackendData
    const v6only = '{"PublicIP":"0.0.0.0","PublicIPv6":"fd00:198:18::10","BackendType":"wireguard","BackendV6Data":{"PublicKey":"k","Port":51821}}';
    expect(encodeLeaseValue((decodeLeaseValue(v6only) as { attrs: LeaseAttrs }).attrs)).toBe(v6only);
    // PublicIPv6 is kept in Go's form (RFC 5952)
    expect(decodeLeaseValue('{"PublicIP":"1.2.3.4","PublicIPv6":"FD00:0198:0018:0000:0000:0000:0000:0010"}')).toMatchObject({ attrs: { PublicIPv6: 'fd00:198:18::10' } });
  });

  it('writes FLANNEL_IPV6_SUBNET as the first address with the length', () => {
    expect(firstAddress('fd00:10:244:3::/64')).toBe('fd00:10:244:3::1/64');
  });
});
