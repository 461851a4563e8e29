import { describe, expect, it } from 'vitest';
import { decodeLeaseValue, encodeLeaseValue, firstAddress, parseSubnetKeyName, subnetKeyName } from '../../src/lease/lease.js';

describe('lease codec', () => {
  it("writes flannel's value for plain mode", () => {
    expect(encodeLeaseValue({ PublicIP: '198.18.0.10', PublicIPv6: null, BackendType: 'udp' })).toBe(
      '{"PublicIP":"198.18.0.10","PublicIPv6":null,"BackendType":"udp"}',
    );
  });

  it('round-trips BackendData and key names', () => {
    const attrs = { PublicIP: '1.2.3.4', PublicIPv6: null, BackendType: 'wireguard', BackendData: { PublicKey: 'k', Port: 51820 } };
    expect(decodeLeaseValue(encodeLeaseValue(attrs))).toEqual({ ok: true, attrs });
    expect(subnetKeyName('10.244.3.0/24')).toBe('10.244.3.0-24');
    expect(parseSubnetKeyName('10.244.3.0-24')).toBe('10.244.3.0/24');
    expect(parseSubnetKeyName('10.244.3.0-24&fc00::-64')).toBe('10.244.3.0/24');
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
    expect(parseSubnetKeyName(k)).toBeUndefined();
  });

  it('writes FLANNEL_SUBNET as the first address with the length', () => {
    expect(firstAddress('10.244.3.0/24')).toBe('10.244.3.1/24');
  });
});
