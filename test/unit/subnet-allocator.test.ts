import { describe, expect, it } from 'vitest';
import { parseNetworkConfig } from '../../src/config/network-config.js';
import { chooseSubnet, isLeasable, subnetCount, TakenRanges } from '../../src/lease/subnet-allocator.js';
import { netSize, parseNet, parseValue } from '../../src/util/ip.js';
import { seededRandom } from './seeded-random.js';

const config = parseNetworkConfig('{"Network":"10.244.0.0/16","SubnetMin":"10.244.10.0","SubnetMax":"10.244.19.0"}').ipv4!;


describe('subnet allocator', () => {
  it('prefers the previous subnet when free and in range', () => {
    expect(chooseSubnet({ range: config, taken: new Set(), previous: '10.244.12.0/24', random: seededRandom(1) })).toBe('10.244.12.0/24');
    const other = chooseSubnet({ range: config, taken: new Set(['10.244.12.0/24']), previous: '10.244.12.0/24', random: seededRandom(1) });
    expect(other).not.toBe('10.244.12.0/24');
    expect(chooseSubnet({ range: config, taken: new Set(), previous: '10.244.99.0/24', random: seededRandom(1) })).not.toBe('10.244.99.0/24');
  });

  it('only ever returns free subnets inside [SubnetMin, SubnetMax], until none is left', () => {
    const random = seededRandom(42);
    const taken = new Set<string>();
    for (let i = 0; i < subnetCount(config); i++) {
      const s = chooseSubnet({ range: config, taken, random })!;
      expect(isLeasable(config, s)).toBe(true);
      expect(taken.has(s)).toBe(false);
      taken.add(s);
    }
    expect(taken.size).toBe(10);
    expect(chooseSubnet({ range: config, taken, random })).toBeUndefined();
  });

  it('spreads choices (random, not first-fit)', () => {
    const picks = new Set(Array.from({ length: 50 }, (_, i) => chooseSubnet({ range: config, taken: new Set(), random: seededRandom(i + 1) })));
    expect(picks.size).toBeGreaterThan(5);
  });

  it('finds the last free subnet in a nearly full big range', () => {
    const big = parseNetworkConfig('{"Network":"10.0.0.0/8"}').ipv4!;
    const count = subnetCount(big);
    expect(count).toBe(65535);
    const taken = new Set<string>();
    for (let i = 1; i < 65535; i++) taken.add(`10.${i >> 8}.${i & 255}.0/24`);
    expect(chooseSubnet({ range: big, taken, random: seededRandom(3) })).toBe('10.255.255.0/24');
  });

  it('never hands out a subnet inside or around a lease of another size (previous subnet included)', () => {
    // 10.244.12.0/23 (left after a SubnetLen change) covers 10.244.12.0/24 and 10.244.13.0/24;
    // a /22 at 10.244.16.0 covers 16..19; a /26 inside 10.244.10.0/24 takes that /24 too
    const taken = ['10.244.12.0/23', '10.244.16.0/22', '10.244.10.64/26'];
    expect(chooseSubnet({ range: config, taken, previous: '10.244.13.0/24', random: seededRandom(1) })).not.toBe('10.244.13.0/24');
    const got = new Set<string>();
    const t = [...taken];
    for (;;) {
      const s = chooseSubnet({ range: config, taken: t, random: seededRandom(t.length) });
      if (!s) break;
      got.add(s);
      t.push(s);
    }
    expect([...got].sort()).toEqual(['10.244.11.0/24', '10.244.14.0/24', '10.244.15.0/24']);
  });

  it('TakenRanges.overlaps agrees with a brute-force check on random prefixes', () => {
    const random = seededRandom(7);
    const prefix = () => {
      const len = 16 + Math.floor(random() * 15);
      const base = (Number(parseValue('10.244.0.0').value) + Math.floor(random() * 65536)) & ~(2 ** (32 - len) - 1);
      return `${[base >>> 24, (base >>> 16) & 255, (base >>> 8) & 255, base & 255].join('.')}/${len}`;
    };
    for (let round = 0; round < 200; round++) {
      const taken = Array.from({ length: Math.floor(random() * 12) }, prefix);
      const ranges = new TakenRanges(taken);
      for (let q = 0; q < 20; q++) {
        const c = parseNet(prefix());
        const [a0, a1] = [c.base, c.base + netSize(4, c.len)];
        const brute = taken.some((s) => {
          const n = parseNet(s);
          return n.base < a1 && n.base + netSize(4, n.len) > a0;
        });
        expect(ranges.overlaps(a0, a1 - a0)).toBe(brute);
      }
    }
  });
});
