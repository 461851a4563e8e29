/**
 * The allocation-free IPv4 paths (util/ip.ts quad, lease.ts's key names, subnet-allocator's
 * TakenRanges) against the generic parsers on random texts: a fast path may only ever decline
 * (and leave the text to the generic parser), never disagree.
 */
import { isIPv4, isIPv6 } from 'node:net';
import { describe, expect, it } from 'vitest';
import { parseLeaseKeyName } from '../../src/lease/lease.js';
import { TakenRanges } from '../../src/lease/subnet-allocator.js';
import { formatNet, isAligned, maskNet, parseAddress, parseNet, quad } from '../../src/util/ip.js';
import { seededRandom } from './seeded-random.js';

const random = seededRandom(14);
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;
const OCTETS = ['0', '1', '9', '10', '00', '01', '099', '100', '199', '249', '250', '255', '256', '300', '1000', '', 'a', '-1', ' 1'];

function quadText(): string {
  const n = random() < 0.1 ? 3 + Math.floor(random() * 3) : 4;
  const parts = Array.from({ length: n }, () => pick(OCTETS));
  return random() < 0.05 ? `${parts.join('.')}.` : parts.join('.');
}

/** flanneld's key grammar read the slow way (lease.ts before its fast path) */
function referenceKey(name: string): { subnet: string; ipv6Subnet: string | undefined } | undefined {
  const m = /^(\d{1,3}(?:\.\d{1,3}){3})-(\d{1,2})(?:&([a-f\d:]+)-(\d{1,3}))?$/.exec(name);
  if (!m || !isIPv4(m[1]!)) return undefined;
  const aligned = (addr: string, len: number, family: 4 | 6, max: number) => {
    if (len > max) return undefined;
    const n = parseNet(`${addr}/${len}`, family);
    return isAligned(family, n.base, len) ? formatNet(maskNet(n)) : undefined;
  };
  const v4 = aligned(m[1]!, Number(m[2]), 4, 31);
  if (v4 === undefined) return undefined;
  let v6: string | undefined;
  if (m[3] !== undefined) {
    if (!isIPv6(m[3])) return undefined;
    v6 = aligned(m[3], Number(m[4]), 6, 127);
    if (v6 === undefined || v6 === '::/0') return undefined;
  }
  if (v4 === '0.0.0.0/0') return v6 === undefined ? undefined : { subnet: v6, ipv6Subnet: v6 };
  return { subnet: v4, ipv6Subnet: v6 };
}

describe('allocation-free IPv4 parsing', () => {
  it('quad accepts exactly what isIPv4 accepts, with the same value, on 20,000 random texts', () => {
    let accepted = 0;
    for (let i = 0; i < 20_000; i++) {
      const t = quadText();
      const q = quad(t);
      expect(q >= 0, t).toBe(isIPv4(t));
      if (q < 0) continue;
      accepted++;
      const b = parseAddress(t).bytes;
      expect(q, t).toBe(((b[0]! << 24) | (b[1]! << 16) | (b[2]! << 8) | b[3]!) >>> 0);
    }
    expect(accepted).toBeGreaterThan(500); // the generator reaches both sides
    expect(quad('x10.244.3.0-24', 1, 11)).toBe(0x0af40300); // a slice, without slicing
  });

  it('lease key names read as the generic parser reads them, on 20,000 random names', () => {
    const LENS = ['0', '1', '8', '16', '24', '30', '31', '32', '05', '024', '', 'x'];
    let leases = 0;
    for (let i = 0; i < 20_000; i++) {
      const base = random() < 0.7 ? `10.244.${Math.floor(random() * 256)}.${pick(['0', '0', '128', '64', '1'])}` : quadText();
      let name = `${base}-${pick(LENS)}`;
      if (random() < 0.05) name += `&fd00:10:244:${Math.floor(random() * 16).toString(16)}::-64`;
      if (random() < 0.03) name = `0.0.0.0-0&fd00::-${pick(['64', '0'])}`;
      const want = referenceKey(name);
      expect(parseLeaseKeyName(name), name).toEqual(want);
      if (want) leases++;
    }
    expect(leases).toBeGreaterThan(2000);
  });

  it('TakenRanges reads IPv4 subnets the fast way as parseNet reads them', () => {
    for (let i = 0; i < 5000; i++) {
      const s = `${quadText()}/${pick(['0', '8', '24', '32', '33', '05', ''])}`;
      let n;
      try {
        n = parseNet(s, 4);
      } catch {
        n = undefined;
      }
      const t = new TakenRanges([s], 4);
      // a generic-parser subnet overlaps its own base; a text the generic parser refuses overlaps nothing
      expect(t.overlaps(n ? n.base : 0n, 1n), s).toBe(n !== undefined);
      if (n && n.len > 0) expect(t.overlaps(n.base + (1n << BigInt(32 - n.len)), 1n), s).toBe(false);
    }
  });
});
