import { describe, expect, it } from 'vitest';
import { parseNetworkConfig } from '../../src/config/network-config.js';
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
    expect(parseNetworkConfig('{"Network":"10.244.0.0/16","EnableNFTables":true}').enableNFTables).toBe(true);
    expect(Object.isFrozen(c)).toBe(true);
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

  it('parses and validates the wireguard backend', () => {
    const psk = Buffer.alloc(32, 7).toString('base64');
    const c = parseNetworkConfig(`{"Network":"10.244.0.0/16","Backend":{"Type":"wireguard","PSK":"${psk}","PersistentKeepaliveInterval":25}}`);
    expect(c.backend).toEqual({ type: 'wireguard', listenPort: 51820, psk, mtu: undefined, persistentKeepaliveSeconds: 25 });
    expect(fieldOf('{"Network":"10.244.0.0/16","Backend":{"Type":"wireguard","PSK":"short"}}')).toBe('Backend.PSK');
    expect(fieldOf('{"Network":"10.244.0.0/16","Backend":{"Type":"wireguard","ListenPort":70000}}')).toBe('Backend.ListenPort');
  });

  it.each([
    ['not json', '(document)'],
    ['[]', '(document)'],
    ['{}', 'Network'],
    ['{"Network":"10.244.0.0"}', 'Network'],
    ['{"Network":"10.244.0.1/16"}', 'Network'],
    ['{"Network":"10.244.0.0/30"}', 'Network'],
    ['{"Network":"10.244.0.0/16","SubnetLen":17}', 'SubnetLen'],
    ['{"Network":"10.244.0.0/16","SubnetLen":31}', 'SubnetLen'],
    ['{"Network":"10.244.0.0/16","SubnetLen":"24"}', 'SubnetLen'],
    ['{"Network":"10.244.0.0/16","SubnetMin":"10.245.0.0"}', 'SubnetMin'],
    ['{"Network":"10.244.0.0/16","SubnetMax":"10.244.3.7"}', 'SubnetMax'],
    ['{"Network":"10.244.0.0/16","SubnetMin":"10.244.9.0","SubnetMax":"10.244.3.0"}', 'SubnetMin'],
    ['{"Network":"10.244.0.0/16","Netwrok":"x"}', 'Netwrok'],
    ['{"Network":"10.244.0.0/16","EnableIPv6":true,"IPv6Network":"fc00::/48"}', 'EnableIPv6'],
    ['{"Network":"10.244.0.0/16","IPv6Network":"10.0.0.0/8"}', 'IPv6Network'],
    ['{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan"}}', 'Backend.Type'],
    ['{"Network":"10.244.0.0/16","Backend":{"Type":"udp","VNI":1}}', 'Backend.VNI'],
    ['{"Network":"10.244.0.0/16","Backend":{"Type":"udp","Port":0}}', 'Backend.Port'],
    ['{"Network":"10.244.0.0/16","Backend":"udp"}', 'Backend'],
  ])('rejects %s naming %s', (text, field) => {
    expect(fieldOf(text)).toBe(field);
  });
});
