/**
 * Dual-stack and IPv6-only allocation (src/lease/subnet-allocator.ts chooseLease, the lease
 * manager over the in-memory registry): both subnets in range and free, paired by index so that
 * the IPv4 create guard also guards the IPv6 subnet, unpaired ones guarded against every key,
 * the previous pair reused, and an IPv6-only network's nodes told apart by PublicIPv6.
 */
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { parseNetworkConfig } from '../../src/config/network-config.js';
import { encodeLeaseValue, leaseKeyName, parseLeaseKeyName, subnetsOf } from '../../src/lease/lease.js';
import { LeaseManager } from '../../src/lease/lease-manager.js';
import { chooseLease, isLeasable } from '../../src/lease/subnet-allocator.js';
import { MemoryRegistry } from '../../src/registry/memory-registry.js';
import { guardPrefixes } from '../../src/registry/overlap-guard.js';
import { FakeClock } from './fake-clock.js';
import { seededRandom } from './seeded-random.js';

const DUAL = '{"Network":"10.244.0.0/16","SubnetMin":"10.244.1.0","SubnetMax":"10.244.8.0","EnableIPv6":true,"IPv6Network":"fd00:10:244::/56","IPv6SubnetMax":"fd00:10:244:8::"}';
const V6ONLY = '{"EnableIPv4":false,"EnableIPv6":true,"IPv6Network":"fd00:10:244::/60"}';
const config = parseNetworkConfig(DUAL);

describe('dual-stack allocation', () => {
  it('pairs the k-th IPv4 subnet with the k-th IPv6 subnet while that is free, until both ranges are full', () => {
    const random = seededRandom(3);
    const taken: string[] = [];
    for (let i = 0; i < 8; i++) {
      const c = chooseLease({ config, taken, random });
      if ('full' in c) throw new Error('full too early');
      expect(isLeasable(config.ipv4!, c.subnet)).toBe(true);
      expect(isLeasable(config.ipv6!, c.ipv6Subnet!)).toBe(true);
      // 10.244.K.0/24 ↔ fd00:10:244:K::/64 (both ranges start at index 1)
      expect(c.ipv6Subnet).toBe(`fd00:10:244:${c.subnet.split('.')[2]}::/64`);
      expect(c.guardAll).toBe(false);
      expect(taken).not.toContain(c.subnet);
      expect(taken).not.toContain(c.ipv6Subnet);
      taken.push(c.subnet, c.ipv6Subnet!);
    }
    expect(chooseLease({ config, taken, random })).toEqual({ full: 4 });
  });

  it('takes an IPv6 subnet whose IPv4 partner is taken when its own partner is not free, and guards it against every key', () => {
    // fd00:10:244:2:: is taken by an IPv6-only leftover; only 10.244.2.0/24 is free in IPv4, so
    // the IPv6 subnet must be one whose IPv4 partner is held (no pairing node can want it)
    const held = ['1', '3', '5', '7'];
    const taken = ['fd00:10:244:2::/64', 'fd00:10:244:4::/64', 'fd00:10:244:6::/64', 'fd00:10:244:8::/64', ...[...held, '4', '6', '8'].map((k) => `10.244.${k}.0/24`)];
    for (let seed = 1; seed < 30; seed++) {
      const c = chooseLease({ config, taken, random: seededRandom(seed) });
      expect(c).toMatchObject({ subnet: '10.244.2.0/24', guardAll: true });
      const k = /^fd00:10:244:(\d)::\/64$/.exec((c as { ipv6Subnet: string }).ipv6Subnet)![1]!;
      expect(held).toContain(k);
    }
    const c = chooseLease({ config, taken, random: seededRandom(1) });
    expect(guardPrefixes(leaseKeyName(c as never), true)).toEqual(['']);
    expect(guardPrefixes('10.244.2.0-24&fd00:10:244:2::-64')).not.toContain('');
  });

  it('reuses the previous pair only when both are free and in range; says which family is full', () => {
    const previous = { subnet: '10.244.4.0/24', ipv6Subnet: 'fd00:10:244:7::/64' };
    expect(chooseLease({ config, taken: [], previous, random: seededRandom(1) })).toEqual({ ...previous, guardAll: true });
    const c = chooseLease({ config, taken: ['fd00:10:244:7::/64'], previous, random: seededRandom(1) });
    expect(c).not.toMatchObject({ ipv6Subnet: 'fd00:10:244:7::/64' });
    // a previous IPv4-only lease is not reused in a dual-stack network (flanneld's isIPv6SubnetConfigCompat)
    expect(chooseLease({ config, taken: [], previous: { subnet: '10.244.4.0/24' }, random: seededRandom(1) })).toMatchObject({ guardAll: false });
    const v6Full = Array.from({ length: 8 }, (_, i) => `fd00:10:244:${i + 1}::/64`);
    expect(chooseLease({ config, taken: v6Full, random: seededRandom(1) })).toEqual({ full: 6 });
  });

  it('IPv6 only: one subnet, keyed 0.0.0.0-0&…, every create guarded by all keys', () => {
    const c = chooseLease({ config: parseNetworkConfig(V6ONLY), taken: [], random: seededRandom(2) });
    if ('full' in c) throw new Error('full');
    expect(c.subnet).toBe(c.ipv6Subnet);
    expect(leaseKeyName(c)).toMatch(/^0\.0\.0\.0-0&fd00:10:244:[1-9a-e]::-64$/);
    expect(guardPrefixes(leaseKeyName(c))).toEqual(['']);
  });
});

describe('lease manager, dual stack and IPv6 only', () => {
  const log = pino({ level: 'silent' });
  const manager = (registry: MemoryRegistry, clock: FakeClock, text: string, ip: string, ip6: string, seed: number) =>
    new LeaseManager({
      registry, clock, log, random: seededRandom(seed), config: parseNetworkConfig(text),
      attrs: { PublicIP: text === V6ONLY ? '0.0.0.0' : ip, PublicIPv6: ip6, BackendType: 'udp' },
      ttlMs: 24 * 3600_000, renewMarginMs: 3600_000,
    });

  it('writes one key per node with both subnets, none shared, and reuses it after a restart', async () => {
    const clock = new FakeClock();
    const registry = new MemoryRegistry(clock, DUAL);
    const leases = [];
    for (let i = 0; i < 8; i++) leases.push(await manager(registry, clock, DUAL, `198.18.0.${10 + i}`, `fd00:198:18::${10 + i}`, i).acquire());
    const names = (await registry.listSubnets()).entries.map((e) => e.name);
    expect(names).toHaveLength(8);
    for (const n of names) expect(n).toMatch(/^10\.244\.[1-8]\.0-24&fd00:10:244:[1-8]::-64$/);
    const all = leases.flatMap((l) => subnetsOf(l));
    expect(new Set(all).size).toBe(16);
    expect(registry.get(leaseKeyName(leases[0]!))!.value).toBe('{"PublicIP":"198.18.0.10","PublicIPv6":"fd00:198:18::10"}'); // no BackendType: flanneld's udp backend omits it
    const again = await manager(registry, clock, DUAL, '198.18.0.10', 'fd00:198:18::10', 99).acquire();
    expect({ subnet: again.subnet, ipv6Subnet: again.ipv6Subnet }).toEqual({ subnet: leases[0]!.subnet, ipv6Subnet: leases[0]!.ipv6Subnet });
  });

  it("replaces this node's IPv4-only lease when IPv6 is turned on (flanneld deletes what does not fit)", async () => {
    const clock = new FakeClock();
    const registry = new MemoryRegistry(clock, DUAL);
    registry.put('10.244.3.0-24', encodeLeaseValue({ PublicIP: '198.18.0.10', PublicIPv6: null, BackendType: 'udp' }));
    const l = await manager(registry, clock, DUAL, '198.18.0.10', 'fd00:198:18::10', 1).acquire();
    expect(l.ipv6Subnet).toBeDefined();
    expect((await registry.listSubnets()).entries.map((e) => e.name)).toEqual([leaseKeyName(l)]);
  });

  it('IPv6 only: nodes are told apart by PublicIPv6 (all say PublicIP 0.0.0.0), each gets its own subnet', async () => {
    const clock = new FakeClock();
    const registry = new MemoryRegistry(clock, V6ONLY);
    const a = await manager(registry, clock, V6ONLY, '', 'fd00:198:18::10', 1).acquire();
    const b = await manager(registry, clock, V6ONLY, '', 'fd00:198:18::11', 2).acquire();
    expect(a.subnet).not.toBe(b.subnet);
    const entries = (await registry.listSubnets()).entries;
    expect(entries.map((e) => parseLeaseKeyName(e.name)?.ipv6Subnet).sort()).toEqual([a.ipv6Subnet, b.ipv6Subnet].sort());
    for (const e of entries) expect(e.name.startsWith('0.0.0.0-0&')).toBe(true);
    expect(registry.get(leaseKeyName(a))!.value).toBe('{"PublicIP":"0.0.0.0","PublicIPv6":"fd00:198:18::10"}'); // no BackendType: flanneld's udp backend omits it
    const a2 = await manager(registry, clock, V6ONLY, '', 'fd00:198:18::10', 3).acquire();
    expect(a2.subnet).toBe(a.subnet);
  });
});
