/**
 * The acquisition's byte paths (acquire-view.ts over lease-page.ts: key names read as IPv4 codes,
 * values searched for our address, TakenRanges on typed arrays) against the plain reading — every
 * entry decoded, every name parsed, overlap by bigint arithmetic — on random listings with odd
 * names, escaped and misleading values; and the allocation at the edges of a range.
 */
import { describe, expect, it } from 'vitest';
import { parseNetworkConfig } from '../../src/config/network-config.js';
import { AcquireView, ourNeedle } from '../../src/lease/acquire-view.js';
import { readEntry } from '../../src/lease/lease-entry.js';
import { ipv4KeyCode, ipv4KeySubnet, parseLeaseKeyName, subnetsOf, type Lease, type LeaseAttrs } from '../../src/lease/lease.js';
import { chooseLease } from '../../src/lease/subnet-allocator.js';
import { LeasePage } from '../../src/registry/lease-page.js';
import type { RegistryEntry } from '../../src/registry/registry.js';
import { netSize, parseNet } from '../../src/util/ip.js';
import { seededRandom } from './seeded-random.js';

const random = seededRandom(2026);
const int = (n: number) => Math.floor(random() * n);
const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)]!;
const OURS = '198.18.1.1';
const attrs: LeaseAttrs = { PublicIP: OURS, PublicIPv6: null, BackendType: 'udp' };

function name(): string {
  const len = pick([16, 20, 23, 24, 24, 24, 26, 30, 31, 32]);
  const base = (0x0af40000 + int(1 << 16)) >>> 0;
  const aligned = random() < 0.9 ? base - (base % 2 ** (32 - len)) : base;
  const text = `${aligned >>> 24}.${(aligned >>> 16) & 255}.${(aligned >>> 8) & 255}.${aligned & 255}`;
  return pick([
    () => `${text}-${len}`, () => `${text}-${len}`, () => `${text}-${len}`, () => `${text}-0${len}`, () => `${text}-${len}&fd00:10:244:${int(16).toString(16)}::-64`,
    () => `0.0.0.0-0&fd00:10:244:${int(16).toString(16)}::-64`, () => `${text}-${len}é`, () => 'hello', () => `${text.replace('10.', '010.')}-${len}`, () => `-${text}-${len}`,
  ])();
}

function value(): string {
  const ip = pick([OURS, OURS, '198.18.1.10', '198.18.1.11', '198.18.11.1', '98.18.1.1', '198.18.1.100']);
  return pick([
    () => JSON.stringify({ PublicIP: ip, PublicIPv6: null }),
    () => JSON.stringify({ PublicIP: ip, PublicIPv6: null, BackendType: 'vxlan', BackendData: { VtepMAC: 'aa:bb', Note: OURS } }),
    () => JSON.stringify({ PublicIP: '198.18.1.2', Old: { PublicIP: OURS } }),
    () => `{"PublicIP":"198.18.1.\\u0031","PublicIPv6":null}`, // our address, escaped
    () => `{"PublicIP":"198.18.1.1\\u0030"}`, // 198.18.1.10, escaped
    () => `{ "PublicIP" : "${ip}" }`,
    () => 'not json',
    () => `"${OURS}"`,
  ])();
}

/** overlap the slow, obvious way */
function overlapsAny(taken: string[], subnet: string): boolean {
  const fam = subnet.includes(':') ? 6 : 4;
  const n = parseNet(subnet, fam);
  return taken.some((t) => {
    const tf = t.includes(':') ? 6 : 4;
    if (tf !== fam) return false;
    const m = parseNet(t, tf);
    return m.base < n.base + netSize(fam, n.len) && n.base < m.base + netSize(tf, m.len);
  });
}

describe('acquire view: byte paths vs the plain reading', () => {
  it('agrees on ours, their lease ids, taken subnets and the table entries, on 200 random listings', () => {
    for (let round = 0; round < 200; round++) {
      const entries: RegistryEntry[] = Array.from({ length: 1 + int(120) }, (_, i) => ({ name: name(), value: value(), modRevision: 10 + i, leaseId: String(int(1e9)) }));
      const isOurs = (l: Lease) => l.attrs.PublicIP === OURS;
      // the plain reading: every entry decoded
      const want = new Map<string, { subnet: string; leaseId: string }>();
      const taken: string[] = [];
      for (const e of entries) {
        const k = parseLeaseKeyName(e.name);
        if (k) taken.push(...subnetsOf(k));
        const v = readEntry(e.name, e.value, e.modRevision);
        if (v.kind === 'lease' && isOurs(v.lease)) want.set(v.lease.subnet, { subnet: v.lease.subnet, leaseId: e.leaseId });
      }
      // the same listing cut into pages at random
      const pages: LeasePage[] = [];
      for (let at = 0; at < entries.length; ) {
        const n = 1 + int(40);
        pages.push(LeasePage.fromEntries(entries.slice(at, at + n)));
        at += n;
      }
      const v = new AcquireView({ pages, revision: 99 }, ourNeedle(attrs, true), isOurs);
      expect([...v.ours.values()].map((o) => ({ subnet: o.lease.subnet, leaseId: o.leaseId }))).toEqual([...want.values()]);
      expect(v.entries()).toEqual(entries);
      for (let q = 0; q < 50; q++) {
        const len = pick([16, 22, 24, 27, 31, 32]);
        const b = (0x0af40000 + int(1 << 16)) >>> 0;
        const base = b - (b % 2 ** (32 - len));
        const s = random() < 0.1 ? `fd00:10:244:${int(16).toString(16)}::/64` : `${base >>> 24}.${(base >>> 16) & 255}.${(base >>> 8) & 255}.${base & 255}/${len}`;
        expect(v.overlaps(s.includes(':') ? { subnet: s, ipv6Subnet: s } : { subnet: s }), s).toBe(overlapsAny(taken, s));
      }
    }
  });

  it('ipv4KeyCode reads a name exactly when the key grammar reads it as plain IPv4, and to the same subnet', () => {
    let codes = 0;
    for (let i = 0; i < 20_000; i++) {
      const n = name();
      const code = ipv4KeyCode(Buffer.from(n), 0, Buffer.byteLength(n));
      const k = parseLeaseKeyName(n);
      if (code >= 0) {
        codes++;
        expect(k, n).toEqual({ subnet: ipv4KeySubnet(code), ipv6Subnet: undefined });
      } else expect(k === undefined || k.ipv6Subnet !== undefined, n).toBe(true);
      // in the middle of other bytes, the same
      const padded = Buffer.from(`xx${n}yy`);
      expect(ipv4KeyCode(padded, 2, padded.length - 2), n).toBe(code);
    }
    expect(codes).toBeGreaterThan(3000); // the generator reaches both sides
  });
});

describe('allocation from the byte paths at the edges of a range', () => {
  // an odd subnet length (/29: not on an octet), SubnetMin and SubnetMax inside the network:
  // 15 subnets, .16 .. .128
  const config = parseNetworkConfig('{"Network":"10.244.0.0/24","SubnetLen":29,"SubnetMin":"10.244.0.16","SubnetMax":"10.244.0.128"}');
  const key = (a: number, len = 29): RegistryEntry => ({ name: `10.244.0.${a}-${len}`, value: '{"PublicIP":"198.18.0.2"}', modRevision: a, leaseId: '0' });
  const keys = (from: number, to: number, except: number[] = []) => {
    const out: RegistryEntry[] = [];
    for (let a = from; a <= to; a += 8) if (!except.includes(a)) out.push(key(a));
    return out;
  };
  const choose = (entries: RegistryEntry[], seed = 1, c = config) => {
    const v = new AcquireView({ pages: [LeasePage.fromEntries(entries)], revision: 1 }, OURS, () => false);
    return chooseLease({ config: c, taken: v.taken, random: seededRandom(seed) });
  };

  it('finds the first and the last subnet of the range when only that one is free', () => {
    for (let seed = 1; seed <= 5; seed++) {
      expect(choose(keys(16, 128, [16]), seed)).toMatchObject({ subnet: '10.244.0.16/29' });
      expect(choose(keys(16, 128, [128]), seed)).toMatchObject({ subnet: '10.244.0.128/29' });
    }
  });

  it('keys outside [SubnetMin, SubnetMax] take nothing inside; the range full is full', () => {
    const got = choose([...keys(0, 8), ...keys(136, 248)]);
    expect('subnet' in got && got.subnet).toMatch(/^10\.244\.0\.\d+\/29$/);
    const base = Number((got as { subnet: string }).subnet.split('.')[3]!.split('/')[0]);
    expect(base >= 16 && base <= 128).toBe(true);
    expect(choose(keys(16, 128))).toEqual({ full: 4 });
  });

  it('a wider key covers the subnets inside it; the network\'s last subnet is found', () => {
    // a /28 at .32 covers .32 and .40; a /26 at .64 covers .64 .. .120; every other one taken alone
    const wide = [...keys(16, 128, [32, 40, 64, 72, 80, 88, 96, 104, 112, 120]), key(32, 28), key(64, 26)];
    expect(choose(wide)).toEqual({ full: 4 });
    expect(choose(wide.filter((e) => e.name !== '10.244.0.64-26'))).toMatchObject({ subnet: expect.stringMatching(/^10\.244\.0\.(64|72|80|88|96|104|112|120)\/29$/) });
    // defaults: SubnetMin the second subnet (.8), SubnetMax the last (.248)
    const whole = parseNetworkConfig('{"Network":"10.244.0.0/24","SubnetLen":29}');
    expect(choose(keys(8, 240), 3, whole)).toMatchObject({ subnet: '10.244.0.248/29' });
    expect(choose(keys(16, 248), 3, whole)).toMatchObject({ subnet: '10.244.0.8/29' });
  });
});
