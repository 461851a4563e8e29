import { describe, expect, it } from 'vitest';
import { parseNetworkConfig, readNetworkConfig } from '../../src/config/network-config.js';
import { ConfigError } from '../../src/util/errors.js';

function fieldOf(text: string): string {
  try {
    parseNetworkConfig(text);
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigError);
    expect((e as ConfigError).code).toBe('ERR_TULLE_CONFIG');
    return (e as ConfigError).field;
  }
  throw new Error(`no error for ${text}`);
}

describe('network config', () => {
  it("applies flannel's defaults", () => {
    const c = parseNetworkConfig('{"Network":"10.244.0.0/16"}');
    expect(c).toEqual({
      network: '10.244.0.0/16', subnetLen: 24, subnetMin: '10.244.1.0', subnetMax: '10.244.255.0',
      backend: { type: 'udp', port: 8285 }, enableNFTables: false,
    });
    expect(Object.isFrozen(c)).toBe(true);
    expect(parseNetworkConfig('{"Network":"10.244.0.0/16","EnableNFTables":true}').enableNFTables).toBe(true);
    // null leaves a plain field at its default (Go); 0.0.0.0 and SubnetLen 0 mean "not set" (flannel)
    expect(parseNetworkConfig('{"Network":"10.244.0.0/16","SubnetLen":null,"EnableNFTables":null,"SubnetMin":"0.0.0.0"}')).toEqual(c);
    expect(parseNetworkConfig('{"Network":"10.244.0.0/16","SubnetLen":0}')).toEqual(c);
  });

  it('uses prefix+2 for networks smaller than /22', () => {
    const c = parseNetworkConfig('{"Network":"10.1.0.0/26"}');
    expect(c.subnetLen).toBe(28);
    expect([c.subnetMin, c.subnetMax]).toEqual(['10.1.0.16', '10.1.0.48']);
  });

  it('keeps explicit bounds and backend options', () => {
    const c = parseNetworkConfig(
      '{"Network":"10.244.0.0/16","SubnetLen":26,"SubnetMin":"10.244.8.0","SubnetMax":"10.244.9.192","Backend":{"Type":"udp","Port":9000}}',
    );
    expect(c).toMatchObject({ subnetLen: 26, subnetMin: '10.244.8.0', subnetMax: '10.244.9.192', backend: { port: 9000 } });
  });

  it('matches field names without regard to case, as Go does; a later key wins', () => {
    const c = parseNetworkConfig('{"network":"10.9.0.0/16","SUBNETLEN":26,"subnetmin":"10.9.8.0","enablenftables":true,"backend":{"type":"wireguard","listenport":51999,"psk":""}}');
    expect(c).toMatchObject({ network: '10.9.0.0/16', subnetLen: 26, subnetMin: '10.9.8.0', enableNFTables: true, backend: { type: 'wireguard', listenPort: 51999 } });
    expect(parseNetworkConfig('{"Network":"10.1.0.0/16","network":"10.2.0.0/16"}').network).toBe('10.2.0.0/16');
    // Go's folding also maps the long s and the Kelvin sign
    expect(parseNetworkConfig('{"Network":"10.1.0.0/16","\u017fubnetLen":26}').subnetLen).toBe(26);
    expect(parseNetworkConfig('{"Network":"10.1.0.0/16","Bac\u212aend":{"Type":"wireguard"}}').backend.type).toBe('wireguard');
  });

  it('lower-cases the backend type', () => {
    expect(parseNetworkConfig('{"Network":"10.244.0.0/16","Backend":{"Type":"UDP"}}').backend).toEqual({ type: 'udp', port: 8285 });
    expect(parseNetworkConfig('{"Network":"10.244.0.0/16","Backend":{"Type":"WireGuard"}}').backend.type).toBe('wireguard');
  });

  it('ignores unknown fields and says which, including inside Backend', () => {
    const r = readNetworkConfig('{"Network":"10.244.0.0/16","Netwrok":"x","BackendType":"vxlan","Backend":{"Type":"udp","VNI":1,"MTU":1400,"Port":8286}}');
    expect(r.config.backend).toEqual({ type: 'udp', port: 8286 });
    expect(r.notices).toEqual([
      'unknown field "Netwrok" ignored (as flanneld does)',
      'unknown field "BackendType" ignored (as flanneld does)',
      'unknown field "Backend.VNI" ignored for Backend.Type "udp" (as flanneld does)',
      'unknown field "Backend.MTU" ignored for Backend.Type "udp" (as flanneld does)',
    ]);
    expect(readNetworkConfig('{"Network":"10.244.0.0/16","Backend":{"Type":"udp"}}').notices).toEqual([]);
  });

  it('masks host bits of Network and says so', () => {
    const r = readNetworkConfig('{"Network":"10.244.7.9/16"}');
    expect(r.config).toMatchObject({ network: '10.244.0.0/16', subnetMin: '10.244.1.0' });
    expect(r.notices).toEqual(['Network 10.244.7.9/16 has host bits set; using 10.244.0.0/16 (as flanneld does)']);
  });

  it('parses the wireguard backend: empty PSK is none, MTU is the underlay MTU', () => {
    const psk = Buffer.alloc(32, 7).toString('base64');
    const c = parseNetworkConfig(`{"Network":"10.244.0.0/16","Backend":{"Type":"wireguard","PSK":"${psk}","PersistentKeepaliveInterval":25}}`);
    expect(c.backend).toEqual({ type: 'wireguard', listenPort: 51820, psk, mtu: undefined, persistentKeepaliveSeconds: 25 });
    expect(parseNetworkConfig('{"Network":"10.244.0.0/16","Backend":{"Type":"wireguard","PSK":""}}').backend).toMatchObject({ psk: undefined });
    expect(parseNetworkConfig('{"Network":"10.244.0.0/16","Backend":{"Type":"wireguard","MTU":9000,"Mode":"auto","ListenPortV6":51821}}').backend).toMatchObject({ mtu: 9000 });
  });

  it.each([
    ['not json', '(document)'],
    ['[]', '(document)'],
    ['{}', 'Network'],
    ['{"Network":null}', 'Network'],
    ['{"Network":"10.244.0.0"}', 'Network'],
    ['{"Network":"0.0.0.0/0"}', 'Network'],
    ['{"Network":"10.244.0.0/30"}', 'Network'],
    ['{"Network":"10.244.0.0/16","SubnetLen":17}', 'SubnetLen'],
    ['{"Network":"10.244.0.0/16","SubnetLen":31}', 'SubnetLen'],
    ['{"Network":"10.244.0.0/16","SubnetLen":-1}', 'SubnetLen'],
    ['{"Network":"10.244.0.0/16","SubnetLen":24.5}', 'SubnetLen'],
    ['{"Network":"10.244.0.0/16","SubnetLen":"24"}', 'SubnetLen'],
    ['{"Network":"10.244.0.0/16","SubnetMin":""}', 'SubnetMin'],
    ['{"Network":"10.244.0.0/16","SubnetMin":null}', 'SubnetMin'],
    ['{"Network":"10.244.0.0/16","SubnetMin":"10.245.0.0"}', 'SubnetMin'],
    ['{"Network":"10.244.0.0/16","SubnetMax":"10.244.3.7"}', 'SubnetMax'],
    ['{"Network":"10.244.0.0/16","SubnetMin":"10.244.9.0","SubnetMax":"10.244.3.0"}', 'SubnetMin'],
    ['{"Network":"10.244.0.0/16","EnableIPv4":false}', 'EnableIPv4'],
    ['{"Network":"10.244.0.0/16","EnableNFTables":"yes"}', 'EnableNFTables'],
    ['{"Network":"10.244.0.0/16","EnableIPv6":true,"IPv6Network":"fc00::/48"}', 'EnableIPv6'],
    ['{"Network":"10.244.0.0/16","IPv6Network":"10.0.0.0/8"}', 'IPv6Network'],
    ['{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan"}}', 'Backend.Type'],
    ['{"Network":"10.244.0.0/16","Backend":{"Type":"bogus"}}', 'Backend.Type'],
    ['{"Network":"10.244.0.0/16","Backend":{}}', 'Backend.Type'],
    ['{"Network":"10.244.0.0/16","Backend":null}', 'Backend.Type'],
    ['{"Network":"10.244.0.0/16","Backend":{"Type":7}}', 'Backend.Type'],
    ['{"Network":"10.244.0.0/16","Backend":{"Type":"udp","Port":0}}', 'Backend.Port'],
    ['{"Network":"10.244.0.0/16","Backend":{"Type":"udp","Port":"8285"}}', 'Backend.Port'],
    ['{"Network":"10.244.0.0/16","Backend":"udp"}', 'Backend'],
    ['{"Network":"10.244.0.0/16","Backend":{"Type":"wireguard","PSK":"short"}}', 'Backend.PSK'],
    ['{"Network":"10.244.0.0/16","Backend":{"Type":"wireguard","ListenPort":70000}}', 'Backend.ListenPort'],
    ['{"Network":"10.244.0.0/16","Backend":{"Type":"wireguard","Mode":"Auto"}}', 'Backend.Mode'],
    ['{"Network":"10.244.0.0/16","Backend":{"Type":"wireguard","Mode":""}}', 'Backend.Mode'],
    ['{"Network":"10.244.0.0/16","Backend":{"Type":"wireguard","MTU":600}}', 'Backend.MTU'],
    ['{"Network":"10.244.0.0/16","Backend":{"Type":"wireguard","PersistentKeepaliveInterval":-5}}', 'Backend.PersistentKeepaliveInterval'],
  ])('rejects %s naming %s', (text, field) => {
    expect(fieldOf(text)).toBe(field);
  });
});
