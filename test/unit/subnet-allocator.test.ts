import { describe, expect, it } from 'vitest';
import { parseNetworkConfig } from '../../src/config/network-config.js';
import { chooseSubnet, isLeasable, subnetCount } from '../../src/lease/subnet-allocator.js';
import { seededRandom } from './seeded-random.js';

const config = parseNetworkConfig('{"Network":"10.244.0.0/16","SubnetMin":"10.244.10.0","SubnetMax":"10.244.19.0"}');


describe('subnet allocator', () => {
  it('prefers the previous subnet when free and in range', () => {
    expect(chooseSubnet({ config, taken: new Set(), previous: '10.244.12.0/24', random: seededRandom(1) })).toBe('10.244.12.0/24');
    const other = chooseSubnet({ config, taken: new Set(['10.244.12.0/24']), previous: '10.244.12.0/24', random: seededRandom(1) });
    expect(other).not.toBe('10.244.12.0/24');
    expect(chooseSubnet({ config, taken: new Set(), previous: '10.244.99.0/24', random: seededRandom(1) })).not.toBe('10.244.99.0/24');
  });

  it('only ever returns free subnets inside [SubnetMin, SubnetMax], until none is left', () => {
    const random = seededRandom(42);
    const taken = new Set<string>();
    for (let i = 0; i < subnetCount(config); i++) {
      const s = chooseSubnet({ config, taken, random })!;
      expect(isLeasable(config, s)).toBe(true);
      expect(taken.has(s)).toBe(false);
      taken.add(s);
    }
    expect(taken.size).toBe(10);
    expect(chooseSubnet({ config, taken, random })).toBeUndefined();
  });

  it('spreads choices (random, not first-fit)', () => {
    const picks = new Set(Array.from({ length: 50 }, (_, i) => chooseSubnet({ config, taken: new Set(), random: seededRandom(i + 1) })));
    expect(picks.size).toBeGreaterThan(5);
  });

  it('finds the last free subnet in a nearly full big range', () => {
    const big = parseNetworkConfig('{"Network":"10.0.0.0/8"}');
    const count = subnetCount(big);
    expect(count).toBe(65535);
    const taken = new Set<string>();
    for (let i = 1; i < 65535; i++) taken.add(`10.${i >> 8}.${i & 255}.0/24`);
    expect(chooseSubnet({ config: big, taken, random: seededRandom(3) })).toBe('10.255.255.0/24');
  });
});
