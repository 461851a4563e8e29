/**
 * Chooses the subnets a node asks for (design.md §3): its previous subnet if that is still free
 * and inside [SubnetMin, SubnetMax], else a random free one; in dual stack an IPv6 subnet beside
 * the IPv4 one (flanneld's allocateSubnet picks both). "Free" means overlapping no existing lease
 * of any size: after a SubnetLen change a /23 left by one node must keep a /24 inside it from
 * being handed to another (flanneld checks overlap for new subnets, but only equality for the
 * previous one). Pure: randomness is injected.
 *
 * Dual stack pairs the families by index: the k-th IPv4 subnet of the range takes the k-th IPv6
 * subnet when that is free. Two nodes that create different IPv4 subnets at the same time then
 * cannot both take one IPv6 subnet, so the create guard on the IPv4 key (overlap-guard.ts) also
 * guards the IPv6 subnet. A node that cannot pair (the k-th IPv6 subnet is taken) takes an IPv6
 * subnet whose IPv4 partner is taken (no pairing node can want it) and guards its create
 * against every key (`guardAll`).
 */
import type { NetworkConfig, SubnetRange } from '../config/network-config.js';
import { formatNet, netSize, parseNet, parseValue, quad, type Family } from '../util/ip.js';
import { familyOf, ipv4SubnetOf, type LeaseSubnets } from './lease.js';

export interface AllocationInput {
  range: SubnetRange;
  /** subnets already leased (by anyone, any size, either family), e.g. 10.244.3.0/24 */
  taken: Iterable<string> | TakenRanges;
  previous?: string | undefined;
  /** uniform in [0, 1) */
  random: () => number;
}

const RANDOM_TRIES = 32;
/** the scan after the random probes looks at no more subnets than this (an IPv6 range can hold 2^64) */
const SCAN_MAX = 1 << 20;

export function isLeasable(range: SubnetRange, subnet: string): boolean {
  let n;
  try {
    n = parseNet(subnet, range.family);
  } catch {
    return false;
  }
  return n.len === range.subnetLen && n.base >= minOf(range) && n.base <= maxOf(range) && n.base % netSize(n.family, n.len) === 0n;
}

const minOf = (r: SubnetRange) => parseValue(r.subnetMin, r.family).value;
const maxOf = (r: SubnetRange) => parseValue(r.subnetMax, r.family).value;

/**
 * Address ranges [start, end) of one family's taken subnets, for "does this candidate overlap any?"
 * in O(log n). IPv4 in typed arrays of numbers (exact: below 2^33), made from a listing's key codes
 * without a string or a bigint per key (a join storm at 10,000 leases makes one per joiner);
 * IPv6 in bigints.
 */
export class TakenRanges {
  private starts4 = new Float64Array(0);
  /** running maximum of ends: ranges may overlap each other (bad data) */
  private maxEnds4 = new Float64Array(0);
  /** ranges added after construction (what changed since a listing: a few), checked one by one: start, end, ... */
  private readonly added4: number[] = [];
  private readonly starts: bigint[] = [];
  private readonly maxEnds: bigint[] = [];
  private readonly added: Array<[bigint, bigint]> = [];
  readonly family: Family;

  constructor(subnets: Iterable<string>, family: Family = 4) {
    this.family = family;
    if (family === 4) {
      const codes: number[] = [];
      for (const s of subnets) {
        const c = ipv4Code(s);
        if (c >= 0) codes.push(c);
      }
      this.index4(Float64Array.from(codes));
      return;
    }
    const rs: Array<[bigint, bigint]> = [];
    for (const s of subnets) {
      const r = spanOf(s, family);
      if (r) rs.push(r);
    }
    rs.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    let max = -1n;
    for (const [start, end] of rs) {
      if (end > max) max = end;
      this.starts.push(start);
      this.maxEnds.push(max);
    }
  }

  /**
   * IPv4 ranges from `count` codes (base * 64 + prefix length, lease.ts ipv4KeyCode; sorted here,
   * in place) and any other subnets as text.
   */
  static ipv4(codes: Float64Array, count: number, others: Iterable<string> = []): TakenRanges {
    const t = new TakenRanges([], 4);
    const more: number[] = [];
    for (const s of others) {
      const c = ipv4Code(s);
      if (c >= 0) more.push(c);
    }
    let all = codes.subarray(0, count);
    if (more.length) {
      all = new Float64Array(count + more.length);
      all.set(codes.subarray(0, count));
      all.set(more, count);
    }
    t.index4(all);
    return t;
  }

  private index4(codes: Float64Array): void {
    codes.sort();
    const n = codes.length;
    const starts = (this.starts4 = new Float64Array(n));
    const maxEnds = (this.maxEnds4 = new Float64Array(n));
    let max = -1;
    for (let i = 0; i < n; i++) {
      const c = codes[i]!;
      const base = Math.floor(c / 64);
      const end = base + 2 ** (32 - (c - base * 64));
      if (end > max) max = end;
      starts[i] = base;
      maxEnds[i] = max;
    }
  }

  /** One more taken subnet (of this family; others are ignored), without re-sorting. */
  add(subnet: string): void {
    if (this.family === 4) {
      const c = ipv4Code(subnet);
      if (c < 0) return;
      const base = Math.floor(c / 64);
      this.added4.push(base, base + 2 ** (32 - (c - base * 64)));
      return;
    }
    const r = spanOf(subnet, this.family);
    if (r) this.added.push(r);
  }

  /** True when [base, base + size) shares an address with any taken range. */
  overlaps(base: bigint, size: bigint): boolean {
    if (this.family === 4) return this.overlaps4(Number(base), Number(size));
    // last range that starts before the candidate ends
    let lo = 0;
    let hi = this.starts.length - 1;
    let at = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (this.starts[mid]! < base + size) (at = mid), (lo = mid + 1);
      else hi = mid - 1;
    }
    if (at >= 0 && this.maxEnds[at]! > base) return true;
    for (const [start, end] of this.added) if (start < base + size && end > base) return true;
    return false;
  }

  private overlaps4(base: number, size: number): boolean {
    const end = base + size;
    let lo = 0;
    let hi = this.starts4.length - 1;
    let at = -1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (this.starts4[mid]! < end) (at = mid), (lo = mid + 1);
      else hi = mid - 1;
    }
    if (at >= 0 && this.maxEnds4[at]! > base) return true;
    const a = this.added4;
    for (let i = 0; i < a.length; i += 2) if (a[i]! < end && a[i + 1]! > base) return true;
    return false;
  }

  overlapsSubnet(subnet: string): boolean {
    if (familyOf(subnet) !== this.family) return false;
    const n = parseNet(subnet, this.family);
    return this.overlaps(n.base, netSize(n.family, n.len));
  }
}

/** An IPv4 subnet as base * 64 + len (its base as written), without allocation for a dotted quad; -1 when it is none. */
function ipv4Code(subnet: string): number {
  if (familyOf(subnet) !== 4) return -1;
  const slash = subnet.indexOf('/');
  if (slash > 0) {
    const base = quad(subnet, 0, slash);
    const lenText = subnet.length - slash - 1;
    const len = lenText >= 1 && lenText <= 2 ? Number(subnet.slice(slash + 1)) : NaN;
    if (base >= 0 && Number.isInteger(len) && len <= 32) return base * 64 + len;
  }
  try {
    const n = parseNet(subnet, 4);
    return Number(n.base) * 64 + n.len;
  } catch {
    return -1; // not a subnet: cannot overlap anything
  }
}

/** A subnet of this family as [start, end) (its base as written), else undefined. */
function spanOf(subnet: string, family: Family): [bigint, bigint] | undefined {
  if (familyOf(subnet) !== family) return undefined;
  try {
    const n = parseNet(subnet, family);
    return [n.base, n.base + netSize(family, n.len)];
  } catch {
    return undefined; // not a subnet: cannot overlap anything
  }
}

/** The range's subnets by index: 0 is SubnetMin. */
class Slots {
  readonly size: bigint;
  readonly min: bigint;
  readonly count: bigint;
  constructor(readonly range: SubnetRange, readonly taken: TakenRanges) {
    this.size = netSize(range.family, range.subnetLen);
    this.min = minOf(range);
    this.count = (maxOf(range) - this.min) / this.size + 1n;
  }
  free(i: bigint): boolean {
    return i >= 0n && i < this.count && !this.taken.overlaps(this.min + i * this.size, this.size);
  }
  at(i: bigint): string {
    return formatNet({ family: this.range.family, base: this.min + i * this.size, len: this.range.subnetLen });
  }
  indexOf(subnet: string): bigint {
    return (parseNet(subnet, this.range.family).base - this.min) / this.size;
  }
  /** a random index that passes `ok`: random probes first (cheap when the range is sparse), then a scan from a random start */
  pick(random: () => number, ok: (i: bigint) => boolean): bigint | undefined {
    const n = Number(this.count);
    const draw = () => BigInt(Math.min(n - 1, Math.floor(random() * n)));
    for (let t = 0; t < RANDOM_TRIES; t++) {
      const i = draw();
      if (ok(i)) return i;
    }
    const start = draw();
    const scan = this.count < BigInt(SCAN_MAX) ? this.count : BigInt(SCAN_MAX);
    for (let k = 0n; k < scan; k++) {
      const i = (start + k) % this.count;
      if (ok(i)) return i;
    }
    return undefined;
  }
}

function rangesFor(taken: AllocationInput['taken'], family: Family): TakenRanges {
  return taken instanceof TakenRanges && taken.family === family ? taken : new TakenRanges(taken instanceof TakenRanges ? [] : taken, family);
}

/** Returns the subnet to try in one family's range, or undefined when every subnet in range overlaps a lease. */
export function chooseSubnet(input: AllocationInput): string | undefined {
  const { range, previous, random } = input;
  const taken = rangesFor(input.taken, range.family);
  if (previous !== undefined && isLeasable(range, previous) && !taken.overlapsSubnet(previous)) return previous;
  const slots = new Slots(range, taken);
  const i = slots.pick(random, (k) => slots.free(k));
  return i === undefined ? undefined : slots.at(i);
}

export interface LeaseChoice extends LeaseSubnets {
  /** the create must be refused if any lease key appeared since the listing (see the top) */
  guardAll: boolean;
}

/** The taken subnets of both families, as ranges. */
export interface TakenByFamily {
  v4: TakenRanges;
  v6: TakenRanges;
}

export interface LeaseAllocationInput {
  config: Pick<NetworkConfig, 'ipv4' | 'ipv6'>;
  /** subnets already leased, both families */
  taken: Iterable<string> | TakenByFamily;
  previous?: LeaseSubnets | undefined;
  random: () => number;
}

/**
 * The subnets of a new lease in every enabled family, or the family that is full. The previous
 * lease is reused only when all its subnets are still free and in range.
 */
export function chooseLease(input: LeaseAllocationInput): LeaseChoice | { full: Family } {
  const { config, previous, random } = input;
  const byFamily = (input.taken as TakenByFamily).v4 instanceof TakenRanges ? (input.taken as TakenByFamily) : undefined;
  const list = byFamily ? [] : [...(input.taken as Iterable<string>)];
  const t4 = byFamily?.v4 ?? new TakenRanges(list, 4);
  const t6 = byFamily?.v6 ?? new TakenRanges(list, 6);
  const v4 = config.ipv4;
  const v6 = config.ipv6;
  const prev4 = previous && familyOf(previous.subnet) === 4 ? previous.subnet : undefined;
  const prev6 = previous?.ipv6Subnet;
  const fits = (r: SubnetRange | undefined, s: string | undefined, t: TakenRanges) => (r ? s !== undefined && isLeasable(r, s) && !t.overlapsSubnet(s) : s === undefined);
  let s4: string | undefined;
  let s6: string | undefined;
  if (previous && fits(v4, prev4, t4) && fits(v6, prev6, t6)) {
    s4 = prev4;
    s6 = prev6;
  } else {
    if (v4) {
      s4 = chooseSubnet({ range: v4, taken: t4, random });
      if (s4 === undefined) return { full: 4 };
    }
    if (v6) {
      const slots6 = new Slots(v6, t6);
      const slots4 = v4 ? new Slots(v4, t4) : undefined;
      const paired = s4 !== undefined ? slots4!.indexOf(s4) : undefined;
      let i = paired !== undefined && slots6.free(paired) ? paired : undefined;
      // unpaired: prefer an IPv6 subnet whose IPv4 partner is taken or out of range
      i ??= slots6.pick(random, (k) => slots6.free(k) && !(slots4?.free(k) ?? false));
      i ??= slots6.pick(random, (k) => slots6.free(k));
      if (i === undefined) return { full: 6 };
      s6 = slots6.at(i);
    }
  }
  const pairedNow = s4 !== undefined && s6 !== undefined && v4 && v6 && new Slots(v4, t4).indexOf(s4) === new Slots(v6, t6).indexOf(s6);
  return { subnet: (s4 ?? s6)!, ipv6Subnet: s6, guardAll: s6 !== undefined && !pairedNow };
}

/** Number of subnets in the range (a Number: IPv6 ranges may round). */
export function subnetCount(range: SubnetRange): number {
  return Number(new Slots(range, new TakenRanges([], range.family)).count);
}

/** flanneld's isSubnetConfigCompat and isIPv6SubnetConfigCompat: each family present exactly when enabled, and in range */
export function fitsConfig(config: Pick<NetworkConfig, 'ipv4' | 'ipv6'>, l: LeaseSubnets): boolean {
  const v4 = ipv4SubnetOf(l);
  const ok4 = config.ipv4 ? v4 !== undefined && isLeasable(config.ipv4, v4) : v4 === undefined;
  const ok6 = config.ipv6 ? l.ipv6Subnet !== undefined && isLeasable(config.ipv6, l.ipv6Subnet) : l.ipv6Subnet === undefined;
  return ok4 && ok6;
}
