/**
 * The one IP module (src/util/ip.ts), both families: text ↔ bytes ↔ integers, Go's (RFC 5952)
 * IPv6 text, masks and containment against a brute-force bit reference on random prefixes.
 */
import { describe, expect, it } from 'vitest';
import {
  addressValue, firstHost, formatNet, formatValue, isAligned, maskNet, netContains, netMask, netSize, netsOverlap, parseAddress, parseNet, parseValue,
  valueAddress, type Family,
} from '../../src/util/ip.js';
import { seededRandom } from './seeded-random.js';

describe('util/ip, both families', () => {
  it('parses and formats addresses and prefixes as Go prints them', () => {
    expect(formatValue(6, parseValue('FD00:0010:0244:0000:0000:0000:0000:0001').value)).toBe('fd00:10:244::1');
    expect(formatValue(6, parseValue('fd00:0:0:1:0:0:0:1').value)).toBe('fd00:0:0:1::1'); // first longest run
    expect(formatValue(4, parseValue('10.244.3.7').value)).toBe('10.244.3.7');
    expect(formatNet(parseNet('fd00:10:244::/56'))).toBe('fd00:10:244::/56');
    expect(parseNet('10.244.0.0/16')).toEqual({ family: 4, base: 0x0af40000n, len: 16 });
    expect(() => parseNet('10.244.0.0/16', 6)).toThrow(/not an IPv6 prefix/);
    expect(() => parseValue('fd00::1', 4)).toThrow(/not an IPv4 address/);
    expect(() => parseNet('fd00::/129')).toThrow(/0\.\.128/);
    expect(firstHost(parseNet('fd00:10:244:3::/64'))).toBe('fd00:10:244:3::1/64');
    expect(firstHost(parseNet('10.244.3.0/24'))).toBe('10.244.3.1/24');
    expect(valueAddress(6, addressValue(parseAddress('fd00::ff')))).toEqual(parseAddress('fd00::ff'));
  });

  it('masks, sizes, containment and overlap agree with a bit-by-bit reference (seeded)', () => {
    const rnd = seededRandom(11);
    const bitsOf = (family: Family, v: bigint) => v.toString(2).padStart(family === 4 ? 32 : 128, '0');
    for (let i = 0; i < 3000; i++) {
      const family: Family = rnd() < 0.5 ? 4 : 6;
      const width = family === 4 ? 32 : 128;
      const rand = () => {
        let v = 0n;
        for (let k = 0; k < width; k += 16) v = (v << 16n) | BigInt(Math.floor(rnd() * 65536));
        return v & ((1n << BigInt(width)) - 1n);
      };
      const a = { family, base: rand(), len: Math.floor(rnd() * (width + 1)) };
      // b shares a random-length prefix with a, so overlaps are common
      const keep = Math.floor(rnd() * (width + 1));
      const b = { family, base: (a.base & netMask(family, keep)) | (rand() & ~netMask(family, keep) & ((1n << BigInt(width)) - 1n)), len: Math.floor(rnd() * (width + 1)) };
      const abits = bitsOf(family, a.base);
      const bbits = bitsOf(family, b.base);
      expect(bitsOf(family, maskNet(a).base)).toBe(abits.slice(0, a.len) + '0'.repeat(width - a.len));
      expect(netSize(family, a.len)).toBe(1n << BigInt(width - a.len));
      expect(isAligned(family, a.base, a.len)).toBe(!abits.slice(a.len).includes('1'));
      expect(netContains(a, b.base)).toBe(abits.slice(0, a.len) === bbits.slice(0, a.len));
      const l = Math.min(a.len, b.len);
      expect(netsOverlap(a, b)).toBe(abits.slice(0, l) === bbits.slice(0, l));
    }
    expect(netsOverlap(parseNet('10.0.0.0/8'), parseNet('fd00::/8'))).toBe(false);
  });
});
