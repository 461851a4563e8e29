/**
 * What one acquisition knows of the registry (design.md §3): one full listing, then only
 * what changed since (listSubnetsSince). An acquisition needs two things from it, and neither is
 * "every lease decoded":
 *
 *   taken   every subnet with a key (valid value or not): from the key names alone
 *   ours    the leases with this node's PublicIP (flanneld's findLeaseByIP): a value can only be
 *           ours if its text holds our address (or a JSON escape, which could spell it), so only
 *           those values are decoded, and the decoded PublicIP decides
 *
 * A join storm is hundreds of nodes each listing every lease; decoding them all was most of the
 * work (GC a third of it). The raw entries are kept: LeaseManager.start() makes the table from
 * them once (a daemon lists once, as before), and a joiner that only acquires never decodes them.
 * Deletions since `base` stay unseen (their subnets look taken: safe); the watch, started from
 * `base`, replays them.
 */
import type { RegistryEntry } from '../registry/registry.js';
import { readEntry } from './lease-entry.js';
import { parseLeaseKeyName, subnetsOf, type Lease, type LeaseAttrs, type LeaseSubnets } from './lease.js';
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

export class AcquireView {
  /** raw entries by name: the listing at `base` and what changed since */
  readonly entries = new Map<string, RegistryEntry>();
  /** the revision of the full listing */
  readonly base: number;
  /** every taken subnet, both families, as listed (forget() rebuilds the ranges from it) */
  private subnets: string[] = [];
  /** leases with our PublicIP, by subnet, in listing order */
  readonly ours = new Map<string, OurLease>();
  taken: TakenByFamily;
  revision: number;

  constructor(
    listing: { entries: RegistryEntry[]; revision: number },
    private readonly needle: string | undefined,
    private readonly isOurs: IsOurs,
  ) {
    this.revision = this.base = listing.revision;
    const subnets = this.subnets;
    for (const e of listing.entries) {
      this.entries.set(e.name, e);
      const k = parseLeaseKeyName(e.name);
      if (!k) continue;
      subnets.push(k.subnet);
      if (k.ipv6Subnet !== undefined && k.ipv6Subnet !== k.subnet) subnets.push(k.ipv6Subnet);
      this.match(e);
    }
    this.taken = { v4: new TakenRanges(subnets, 4), v6: new TakenRanges(subnets, 6) };
  }

  /** Folds in the entries changed since the last look (listSubnetsSince). */
  absorb(changed: { entries: RegistryEntry[]; revision: number }): void {
    for (const e of changed.entries) {
      this.entries.set(e.name, e);
      const k = parseLeaseKeyName(e.name);
      if (!k) continue;
      for (const s of subnetsOf(k)) {
        this.subnets.push(s);
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
    const gone = new Set(subnetsOf(l));
    for (const [name, e] of this.entries) if (parseLeaseKeyName(name)?.subnet === l.subnet && e.modRevision === l.modRevision) this.entries.delete(name);
    this.ours.delete(l.subnet);
    this.subnets = this.subnets.filter((s) => !gone.has(s));
    this.taken = { v4: new TakenRanges(this.subnets, 4), v6: new TakenRanges(this.subnets, 6) };
  }

  private match(e: RegistryEntry): void {
    if (this.needle !== undefined && !e.value.includes(this.needle) && !e.value.includes('\\')) return;
    const v = readEntry(e.name, e.value, e.modRevision);
    if (v.kind === 'lease' && this.isOurs(v.lease)) this.ours.set(v.lease.subnet, { lease: v.lease, leaseId: e.leaseId });
  }
}
