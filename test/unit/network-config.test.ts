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
      ipv4: { family: 4, network: '10.244.0.0/16', subnetLen: 24, subnetMin: '10.244.1.0', subnetMax: '10.244.255.0' },
      ipv6: undefined,
      backend: { type: 'udp', port: 8285 }, enableNFTables: false,
    });
    expect(Object.isFrozen(c)).toBe(true);
    expect(parseNetworkConfig('{"Network":"10.244.0.0/16","EnableNFTables":true}').enableNFTables).toBe(true);
    // null leaves a plain field at its default (Go); 0.0.0.0 and SubnetLen 0 mean "not set" (flannel)
    expect(parseNetworkConfig('{"Network":"10.244.0.0/16","SubnetLen":null,"EnableNFTables":null,"SubnetMin":"0.0.0.0"}')).toEqual(c);
    expect(parseNetworkConfig('{"Network":"10.244.0.0/16","SubnetLen":0}')).toEqual(c);
  });

  it('uses prefix+2 for networks smaller than /22', () => {
    const c = parseNetworkConfig('{"Network":"10.1.0.0/26"}').ipv4!;
    expect(c.subnetLen).toBe(28);
    expect([c.subnetMin, c.subnetMax]).toEqual(['10.1.0.16', '10.1.0.48']);
  });

  it('keeps explicit bounds and backend options', () => {
    const c = parseNetworkConfig(
      '{"Network":"10.244.0.0/16","SubnetLen":26,"SubnetMin":"10.244.8.0","SubnetMax":"10.244.9.192","Backend":{"Type":"udp","Port":9000}}',
    );
    expect(c).toMatchObject({ ipv4: { subnetLen: 26, subnetMin: '10.244.8.0', subnetMax: '10.244.9.192' }, backend: { port: 9000 } });
  });

  it('matches field names without regard to case, as Go does; a later key wins', () => {
    const c = parseNetworkConfig('{"network":"10.9.0.0/16","SUBNETLEN":26,"subnetmin":"10.9.8.0","enablenftables":true,"backend":{"type":"wireguard","listenport":51999,"psk":""}}');
    expect(c).toMatchObject({ ipv4: { network: '10.9.0.0/16', subnetLen: 26, subnetMin: '10.9.8.0' }, enableNFTables: true, backend: { type: 'wireguard', listenPort: 51999 } });
    expect(parseNetworkConfig('{"Network":"10.1.0.0/16","network":"10.2.0.0/16"}').ipv4!.network).toBe('10.2.0.0/16');
    // Go's folding also maps the long s and the Kelvin sign
    expect(parseNetworkConfig('{"Network":"10.1.0.0/16","\u017fubnetLen":26}').ipv4!.subnetLen).toBe(26);
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
    expect(r.config.ipv4).toMatchObject({ network: '10.244.0.0/16', subnetMin: '10.244.1.0' });
    expect(r.notices).toEqual(['Network 10.244.7.9/16 has host bits set; using 10.244.0.0/16 (as flanneld does)']);
  });

  it('parses the wireguard backend: empty PSK is none, MTU is the underlay MTU', () => {
    const psk = Buffer.alloc(32, 7).toString('base64');
    const c = parseNetworkConfig(`{"Network":"10.244.0.0/16","Backend":{"Type":"wireguard","PSK":"${psk}","PersistentKeepaliveInterval":25}}`);
    expect(c.backend).toEqual({ type: 'wireguard', listenPort: 51820, listenPortV6: 51821, mode: 'separate', psk, mtu: undefined, persistentKeepaliveSeconds: 25 });
    expect(parseNetworkConfig('{"Network":"10.244.0.0/16","Backend":{"Type":"wireguard","PSK":""}}').backend).toMatchObject({ psk: undefined });
    expect(parseNetworkConfig('{"Network":"10.244.0.0/16","Backend":{"Type":"wireguard","MTU":9000,"Mode":"auto","ListenPortV6":51821}}').backend).toMatchObject({ mtu: 9000 });
  });

  it("reads flanneld's dual-stack fields with its defaults (IPv6SubnetLen 64 up to a /62, else prefix + 2)", () => {
    const c = parseNetworkConfig('{"Network":"10.244.0.0/16","EnableIPv6":true,"IPv6Network":"fd00:10:244::/56"}');
    expect(c.ipv4?.network).toBe('10.244.0.0/16');
    expect(c.ipv6).toEqual({ family: 6, network: 'fd00:10:244::/56', subnetLen: 64, subnetMin: 'fd00:10:244:1::', subnetMax: 'fd00:10:244:ff::' });
    expect(parseNetworkConfig('{"Network":"10.244.0.0/16","EnableIPv6":true,"IPv6Network":"fd00:10:244::/120"}').ipv6).toMatchObject({
      subnetLen: 122, subnetMin: 'fd00:10:244::40', subnetMax: 'fd00:10:244::c0',
    });
    const explicit = parseNetworkConfig(
      '{"Network":"10.244.0.0/16","EnableIPv6":true,"IPv6Network":"fd00:10:244::/48","IPv6SubnetLen":60,"IPv6SubnetMin":"fd00:10:244:100::","IPv6SubnetMax":"fd00:10:244:1f0::"}',
    );
    expect(explicit.ipv6).toMatchObject({ subnetLen: 60, subnetMin: 'fd00:10:244:100::', subnetMax: 'fd00:10:244:1f0::' });
    // pointers in flannel: null and :: mean "not set"; host bits masked as flanneld's ParseCIDR does
    const r = readNetworkConfig('{"Network":"10.244.0.0/16","EnableIPv6":true,"IPv6Network":"fd00:10:244::9/56","IPv6SubnetMin":null,"IPv6SubnetMax":"::"}');
    expect(r.config.ipv6).toMatchObject({ network: 'fd00:10:244::/56', subnetMin: 'fd00:10:244:1::', subnetMax: 'fd00:10:244:ff::' });
    expect(r.notices).toEqual(['IPv6Network fd00:10:244::9/56 has host bits set; using fd00:10:244::/56 (as flanneld does)']);
    // an IPv6 network without EnableIPv6 is read and checked, not used (as flanneld)
    expect(parseNetworkConfig('{"Network":"10.244.0.0/16","IPv6Network":"fd00:10:244::/56"}').ipv6).toBeUndefined();
  });

  it('runs IPv6 only with EnableIPv4 false: no Network needed, none used', () => {
    const c = parseNetworkConfig('{"EnableIPv4":false,"EnableIPv6":true,"IPv6Network":"fd00:10:244::/56"}');
    expect(c.ipv4).toBeUndefined();
    expect(c.ipv6?.network).toBe('fd00:10:244::/56');
    expect(parseNetworkConfig('{"EnableIPv4":false,"EnableIPv6":true,"IPv6Network":"fd00:10:244::/56","Network":"10.244.0.0/16"}').ipv4).toBeUndefined();
  });

  it("reads the wireguard backend's ListenPortV6 and Mode (defaults 51821, separate)", () => {
    const wg = (extra: string) => parseNetworkConfig(`{"Network":"10.244.0.0/16","Backend":{"Type":"wireguard"${extra}}}`).backend;
    expect(wg('')).toMatchObject({ listenPortV6: 51821, mode: 'separate' });
    expect(wg(',"ListenPortV6":51900,"Mode":"auto"')).toMatchObject({ listenPortV6: 51900, mode: 'auto' });
    for (const mode of ['separate', 'auto', 'ipv4', 'ipv6']) expect(wg(`,"Mode":"${mode}"`)).toMatchObject({ mode });
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
    ['{"EnableIPv4":false,"EnableIPv6":false,"IPv6Network":"fd00:10:244::/56"}', 'EnableIPv4'],
    ['{"Network":"10.244.0.0/16","EnableIPv6":true}', 'IPv6Network'],
    ['{"Network":"10.244.0.0/16","EnableIPv6":true,"IPv6Network":"::/0"}', 'IPv6Network'],
    ['{"Network":"10.244.0.0/16","EnableIPv6":true,"IPv6Network":null}', 'IPv6Network'],
    ['{"Network":"10.244.0.0/16","EnableIPv6":true,"IPv6Network":"fd00:10:244::/126"}', 'IPv6Network'],
    ['{"Network":"10.244.0.0/16","EnableIPv6":true,"IPv6Network":"fd00:10:244::/56","IPv6SubnetLen":127}', 'IPv6SubnetLen'],
    ['{"Network":"10.244.0.0/16","EnableIPv6":true,"IPv6Network":"fd00:10:244::/56","IPv6SubnetLen":57}', 'IPv6SubnetLen'],
    ['{"Network":"10.244.0.0/16","EnableIPv6":true,"IPv6Network":"fd00:10:244::/56","IPv6SubnetMin":"fd00:10:245::"}', 'IPv6SubnetMin'],
    ['{"Network":"10.244.0.0/16","EnableIPv6":true,"IPv6Network":"fd00:10:244::/56","IPv6SubnetMax":"fd00:10:244:7::1"}', 'IPv6SubnetMax'],
    ['{"Network":"10.244.0.0/16","EnableIPv6":true,"IPv6Network":"fd00:10:244::/56","IPv6SubnetMin":"10.0.0.1"}', 'IPv6SubnetMin'],
    ['{"EnableIPv4":false,"EnableIPv6":true}', 'IPv6Network'],
    ['{"Network":"10.244.0.0/16","EnableNFTables":"yes"}', 'EnableNFTables'],
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
