/**
 * What one acquisition knows of the registry (design.md §3): one full listing, then only
 * what changed since (listSubnetsSince). An acquisition needs two things from it, and neither is
 * "every lease decoded":
 *
 *   taken   every subnet with a key (valid value or not): from the key names alone, read off the
 *           page's bytes (lease.ts ipv4KeyCode: a number per key, no string; the rare name that
 *           is not a plain IPv4 key is made a string and parsed), kept as sorted numbers
 *   ours    the leases with this node's PublicIP (flanneld's findLeaseByIP): a value can only be
 *           ours if it holds our address as a JSON string ("198.18.1.1", quotes included: no hit
 *           in "198.18.1.10") or a backslash (a JSON escape could spell it): one byte search per
 *           page finds those; only they are decoded, and the decoded PublicIP decides
 *
 * A join storm is hundreds of nodes each listing every lease; decoding them all was most of the
 * work. The pages are kept: LeaseManager.start() makes the table from entries() once (a daemon
 * lists once, as before), and a joiner that only acquires never makes a string of another lease.
 * Deletions since `base` stay unseen (their subnets look taken: safe); the watch, started from
 * `base`, replays them.
 */
import { LeasePage } from '../registry/lease-page.js';
import type { RegistryEntry } from '../registry/registry.js';
import { readEntry } from './lease-entry.js';
import { ipv4KeyCode, ipv4KeySubnet, parseLeaseKeyName, subnetsOf, type Lease, type LeaseAttrs, type LeaseSubnets } from './lease.js';
import { TakenRanges, type TakenByFamily } from './subnet-allocator.js';

export interface OurLease {
  lease: Lease;
  /** the storage's lease id */
  leaseId: string;
}

/** Whether a decoded lease is this node's (LeaseManager.isOurs). */
export type IsOurs = (l: Lease) => boolean;

/**
 * The text a value must contain to possibly be ours: our PublicIP as written (a canonical dotted
 * quad is its own formatted form); undefined when no cheap test exists (an IPv6-only network
 * matches PublicIPv6, which has many spellings): then every value is decoded.
 */
export function ourNeedle(attrs: LeaseAttrs, ipv4: boolean): string | undefined {
  return ipv4 ? attrs.PublicIP : undefined;
}

/** a listing: pages of bytes (etcd) or entries (other stores: made pages here) */
export type Listed = { pages: LeasePage[]; revision: number } | { entries: RegistryEntry[]; revision: number };

const BACKSLASH = 0x5c;

export class AcquireView {
  /** the revision of the full listing */
  readonly base: number;
  revision: number;
  /** leases with our PublicIP, by subnet, in listing order */
  readonly ours = new Map<string, OurLease>();
  taken: TakenByFamily;
  /** the listing at `base`, as it came */
  private readonly pages: LeasePage[];
  /** taken IPv4 subnets of the listing as ipv4KeyCode codes; the rare other keys' subnets as text */
  private codes: Float64Array;
  private codeCount = 0;
  private others: string[] = [];
  /** entries changed since `base` (listSubnetsSince), by name: they replace the listed ones */
  private readonly changed = new Map<string, RegistryEntry>();
  /** leases of ours deleted since (forget) */
  private readonly forgotten: Lease[] = [];
  /** the needle as a JSON string (with its quotes: "198.18.1.1" does not hit "198.18.1.10") */
  private readonly needle: Buffer | undefined;
  private readonly needleText: string | undefined;

  constructor(listing: Listed, needle: string | undefined, private readonly isOurs: IsOurs) {
    this.revision = this.base = listing.revision;
    this.pages = 'pages' in listing ? listing.pages : [LeasePage.fromEntries(listing.entries)];
    this.needleText = needle === undefined ? undefined : JSON.stringify(needle);
    this.needle = this.needleText === undefined ? undefined : Buffer.from(this.needleText);
    let n = 0;
    for (const p of this.pages) n += p.count;
    this.codes = new Float64Array(n);
    for (const p of this.pages) {
      const buf = p.buf;
      for (let i = 0; i < p.count; i++) {
        const code = ipv4KeyCode(buf, p.keyStart(i), p.keyEnd(i));
        if (code >= 0) this.codes[this.codeCount++] = code;
        else {
          const k = parseLeaseKeyName(p.name(i));
          if (k) for (const s of subnetsOf(k)) this.others.push(s);
        }
      }
      for (const i of this.candidates(p)) this.match(p.entry(i));
    }
    this.taken = this.makeTaken();
  }

  /** The entries of a page whose value may be ours, in listing order. */
  private candidates(p: LeasePage): Iterable<number> {
    if (this.needle === undefined) return Array.from({ length: p.count }, (_, i) => i);
    const hits = p.valuesHolding(this.needle);
    // a JSON escape could spell our address: such a value is decoded too (flanneld never writes one)
    const escaped = p.valuesHolding(BACKSLASH);
    return escaped.length ? [...new Set([...hits, ...escaped])].sort((a, b) => a - b) : hits;
  }

  private makeTaken(): TakenByFamily {
    const codes = this.codes.slice(0, this.codeCount); // (sorted in place by TakenRanges)
    return { v4: TakenRanges.ipv4(codes, codes.length, this.others), v6: new TakenRanges(this.others, 6) };
  }

  /** Folds in the entries changed since the last look (listSubnetsSince). */
  absorb(changed: { entries: RegistryEntry[]; revision: number }): void {
    for (const e of changed.entries) {
      this.changed.set(e.name, e);
      const k = parseLeaseKeyName(e.name);
      if (!k) continue;
      for (const s of subnetsOf(k)) {
        this.others.push(s);
        this.taken.v4.add(s);
        this.taken.v6.add(s);
      }
      this.ours.delete(k.subnet); // a lease of ours someone rewrote is ours no more, unless it still is
      this.match(e);
    }
    this.revision = changed.revision;
  }

  /** True when any of these subnets overlaps a taken one. */
  overlaps(l: LeaseSubnets): boolean {
    return subnetsOf(l).some((s) => this.taken.v4.overlapsSubnet(s) || this.taken.v6.overlapsSubnet(s));
  }

  /** A lease of ours was deleted: forget it and free its subnets (rare: rebuilds the ranges). */
  forget(l: Lease): void {
    this.forgotten.push(l);
    this.ours.delete(l.subnet);
    const gone = new Set(subnetsOf(l));
    this.others = this.others.filter((s) => !gone.has(s));
    let n = 0;
    for (let i = 0; i < this.codeCount; i++) {
      const c = this.codes[i]!;
      if (!gone.has(ipv4KeySubnet(c))) this.codes[n++] = c;
    }
    this.codeCount = n;
    this.taken = this.makeTaken();
  }

  /**
   * Every entry as the registry has it now, as far as this view knows (the listing, with what
   * changed since and without what was forgotten): for LeaseManager.start()'s table.
   */
  entries(): RegistryEntry[] {
    const out: RegistryEntry[] = [];
    const keep = (e: RegistryEntry) => !this.forgotten.some((l) => l.modRevision === e.modRevision && parseLeaseKeyName(e.name)?.subnet === l.subnet);
    for (const p of this.pages) {
      for (let i = 0; i < p.count; i++) {
        const e = p.entry(i);
        if (!this.changed.has(e.name) && keep(e)) out.push(e);
      }
    }
    for (const e of this.changed.values()) if (keep(e)) out.push(e);
    return out;
  }

  private match(e: RegistryEntry): void {
    if (this.needleText !== undefined && !e.value.includes(this.needleText) && !e.value.includes('\\')) return;
    const v = readEntry(e.name, e.value, e.modRevision);
    if (v.kind === 'lease' && this.isOurs(v.lease)) this.ours.set(v.lease.subnet, { lease: v.lease, leaseId: e.leaseId });
  }
}
