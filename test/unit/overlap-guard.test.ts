/**
 * The create guard's key prefixes (src/registry/overlap-guard.ts) against brute force: every key
 * of a subnet that overlaps ours matches a prefix (else two nodes could create overlapping
 * leases), and for the usual case — one SubnetLen, /24 and longer — keys of subnets of the same
 * size elsewhere match none (else creates refuse each other for nothing). Seeded.
 */
import { describe, expect, it } from 'vitest';
import { matchesAny, overlapPrefixes, subnetOfName } from '../../src/registry/overlap-guard.js';
import { formatValue } from '../../src/util/ip.js';

// IPv4 as plain numbers here (a slow reference beside the module's bigints)
interface Net4 { base: number; len: number }
const intToIp4 = (n: number) => formatValue(4, BigInt(n >>> 0));
const net4Mask = (len: number) => (len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0);
const net4Size = (len: number) => 2 ** (32 - len);
const asNet = (n: Net4) => ({ family: 4 as const, base: BigInt(n.base >>> 0), len: n.len });
import { seededRandom } from './seeded-random.js';

const name = (n: Net4) => `${intToIp4(n.base)}-${n.len}`;
const overlap = (a: Net4, b: Net4) => a.base < b.base + net4Size(b.len) && b.base < a.base + net4Size(a.len);

describe('overlap guard', () => {
  it('covers every overlapping key, any lengths (seeded, 200,000 pairs)', () => {
    const rnd = seededRandom(14);
    const subnet = (len: number): Net4 => ({ base: (Math.floor(rnd() * 2 ** 32) & net4Mask(len)) >>> 0, len });
    for (let i = 0; i < 200_000; i++) {
      const a = subnet(Math.floor(rnd() * 33));
      // b near a: same /8 and often same /16 or /24, so overlaps are common
      const near = [8, 16, 24, 28][Math.floor(rnd() * 4)]!;
      const bl = Math.floor(rnd() * 33);
      const b = { base: (((a.base & net4Mask(near)) | (Math.floor(rnd() * 2 ** 32) & ~net4Mask(near))) & net4Mask(bl)) >>> 0, len: bl };
      const ps = overlapPrefixes(asNet(a));
      expect(ps.length).toBeLessThanOrEqual(49);
      if (overlap(a, b)) {
        expect(matchesAny(name(b), ps), `${name(b)} overlaps ${name(a)}: ${ps.join(' ')}`).toBe(true);
        expect(matchesAny(`${name(b)}&fd00::-64`, ps)).toBe(true);
      }
    }
  });

  it('lets creates of same-size subnets elsewhere pass, for /24 to /32 and /16', () => {
    const rnd = seededRandom(15);
    for (const len of [16, 24, 25, 26, 27, 28, 29, 30, 31, 32]) {
      for (let i = 0; i < 5000; i++) {
        const pick = (): Net4 => ({ base: ((0x0af40000 + Math.floor(rnd() * 65536 * (len === 16 ? 256 : 1))) & net4Mask(len)) >>> 0, len });
        const a = pick();
        const b = pick();
        if (a.base === b.base) continue;
        const ps = overlapPrefixes(asNet(a));
        // /25 to /27 fall back to the /24 block (more than 16 values): same /24 may match
        const sameBlock = len < 28 && len > 24 && (a.base & net4Mask(24)) === (b.base & net4Mask(24));
        if (!sameBlock) expect(matchesAny(name(b), ps), `${name(b)} vs ${name(a)}: ${ps.join(' ')}`).toBe(false);
      }
    }
  });

  it('reads key names, dual stack included, and refuses others', () => {
    expect(subnetOfName('10.244.3.0-24')).toEqual({ family: 4, base: 0x0af40300n, len: 24 });
    expect(subnetOfName('10.244.3.0-24&fd00:10::-64')).toEqual({ family: 4, base: 0x0af40300n, len: 24 });
    for (const bad of ['10.244.3.1-24', '10.244.3.0-33', '10.244.3.0', 'x-24', '10.244.3.0-24x']) expect(() => subnetOfName(bad)).toThrow(/not a subnet key/);
  });
});
