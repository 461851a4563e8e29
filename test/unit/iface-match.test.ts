import { describe, expect, it } from 'vitest';
import { chooseIface, type IfaceChoice } from '../../src/host/iface-match.js';
import { TulleError } from '../../src/util/errors.js';

const all = [
  { name: 'lo', addrs: ['127.0.0.1'] },
  { name: 'eth0', addrs: ['198.18.0.10', '198.18.0.99'] },
  { name: 'eth1', addrs: ['192.0.2.7'] },
  { name: 'wan0', addrs: [] },
];
const none: IfaceChoice = { ifaces: [], ifaceRegexes: [], ifaceCanReach: undefined, publicIp: undefined };
const pick = (c: Partial<IfaceChoice>, routes = {}) => chooseIface({ ...none, ...c }, all, routes);

describe('underlay interface, chosen as flanneld does', () => {
  it('defaults to the default-route interface and its first address; --public-ip picks the interface holding it', () => {
    expect(pick({}, { defaultRoute: { dev: 'eth1', src: undefined } })).toMatchObject({ iface: 'eth1', address: '192.0.2.7', publicIp: '192.0.2.7' });
    expect(pick({ publicIp: '198.18.0.99' }, { defaultRoute: { dev: 'eth1' } })).toMatchObject({ iface: 'eth0', address: '198.18.0.99', publicIp: '198.18.0.99' });
    // not held here (NAT): the default-route interface, PublicIP as given
    expect(pick({ publicIp: '203.0.113.5' }, { defaultRoute: { dev: 'eth1' } })).toMatchObject({ iface: 'eth1', publicIp: '203.0.113.5' });
    expect(() => pick({})).toThrow(/no default route/);
  });

  it('--iface by name or by address, repeatable: the first that matches with an IPv4 address wins', () => {
    expect(pick({ ifaces: ['eth9', 'wan0', 'eth1', 'eth0'] })).toMatchObject({ iface: 'eth1', by: '--iface eth1' });
    expect(pick({ ifaces: ['198.18.0.99'] })).toMatchObject({ iface: 'eth0', address: '198.18.0.99', publicIp: '198.18.0.99' });
    expect(pick({ ifaces: ['198.18.0.99'], publicIp: '203.0.113.5' })).toMatchObject({ iface: 'eth0', publicIp: '203.0.113.5' });
  });

  it('--iface-regex: addresses first (that address), then names; after --iface', () => {
    expect(pick({ ifaceRegexes: ['\\.99$'] })).toMatchObject({ iface: 'eth0', address: '198.18.0.99' });
    expect(pick({ ifaceRegexes: ['^eth1$'] })).toMatchObject({ iface: 'eth1', address: '192.0.2.7' });
    expect(pick({ ifaces: ['nope'], ifaceRegexes: ['^wan', '^e'] })).toMatchObject({ iface: 'eth0', by: '--iface-regex ^e' });
  });

  it('--iface-can-reach: the route\'s interface and source address, last', () => {
    expect(pick({ ifaceCanReach: '198.18.0.2' }, { canReach: { dev: 'eth0', src: '198.18.0.99' } })).toMatchObject({ iface: 'eth0', address: '198.18.0.99' });
    expect(pick({ ifaces: ['eth1'], ifaceCanReach: '198.18.0.2' }, { canReach: { dev: 'eth0', src: '198.18.0.99' } })).toMatchObject({ iface: 'eth1' });
  });

  it('nothing matches: an error listing what was tried and what there is', () => {
    let e: unknown;
    try {
      pick({ ifaces: ['wan0'], ifaceRegexes: ['^x'], ifaceCanReach: '10.9.9.9' });
    } catch (x) {
      e = x;
    }
    expect(e).toBeInstanceOf(TulleError);
    expect((e as TulleError).code).toBe('ERR_TULLE_IFACE');
    expect((e as Error).message).toMatch(/--iface wan0, --iface-regex \^x, --iface-can-reach 10\.9\.9\.9 \(interfaces: lo:\[127\.0\.0\.1\], eth0/);
  });

  it('IPv6: PublicIPv6 is --public-ipv6, else the interface\'s first global IPv6 address; an IPv6-only interface matches when nothing with IPv4 does', () => {
    const dual = [
      { name: 'eth0', addrs: ['198.18.0.10'], addrs6: ['fd00:198:18::10', 'fd00:198:18::99'] },
      { name: 'eth6', addrs: [], addrs6: ['fd00:198:19::7'] },
    ];
    const c = (x: Partial<IfaceChoice>, routes = {}) => chooseIface({ ...none, ...x }, dual, routes);
    expect(c({ ifaces: ['eth0'] })).toMatchObject({ iface: 'eth0', publicIp: '198.18.0.10', publicIpv6: 'fd00:198:18::10' });
    expect(c({ ifaces: ['eth0'], publicIpv6: 'fd00:198:18::99' })).toMatchObject({ publicIpv6: 'fd00:198:18::99' });
    // by IPv6 address, by name, by the IPv6 default route: no IPv4 address, no PublicIP
    expect(c({ ifaces: ['fd00:198:19::7'] })).toMatchObject({ iface: 'eth6', address: undefined, publicIp: undefined, publicIpv6: 'fd00:198:19::7' });
    expect(c({ ifaces: ['eth6'] })).toMatchObject({ iface: 'eth6', publicIpv6: 'fd00:198:19::7', by: '--iface eth6' });
    expect(c({}, { defaultRoute6: { dev: 'eth6' } })).toMatchObject({ iface: 'eth6', by: 'default route' });
    // an interface with IPv4 is still preferred where both match (IPv4 first, as before)
    expect(c({ ifaceRegexes: ['^eth'] })).toMatchObject({ iface: 'eth0' });
    expect(() => chooseIface({ ...none, ifaces: ['eth9'] }, dual, {})).toThrow(/no interface with an IPv4 address matches --iface eth9/);
  });
});
