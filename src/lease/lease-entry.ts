/**
 * What one registry entry under subnets/ is: a lease, a valid subnet key with a value we cannot
 * use (the subnet is still taken), or not a lease key at all. Pure.
 */
import type { RegistryEntry } from '../registry/registry.js';
import { decodeLeaseValue, parseLeaseKeyName, subnetsOf, type Lease, type LeaseSubnets } from './lease.js';

export type EntryView =
  | { kind: 'lease'; lease: Lease }
  | { kind: 'bad-value'; subnets: LeaseSubnets; problem: string }
  | { kind: 'bad-key'; problem: string };

export function readEntry(name: string, value: string, modRevision: number): EntryView {
  const subnets = parseLeaseKeyName(name);
  if (!subnets) return { kind: 'bad-key', problem: 'key is not a subnet (want e.g. 10.244.3.0-24 or 10.244.3.0-24&fd00:10:244:3::-64)' };
  const d = decodeLeaseValue(value);
  if (!d.ok) return { kind: 'bad-value', subnets, problem: d.problem };
  return { kind: 'lease', lease: { ...subnets, attrs: d.attrs, modRevision } };
}

export interface Listing {
  /** valid leases by subnet (Lease.subnet: the IPv4 one, or the IPv6 one of an IPv6-only lease) */
  table: Map<string, Lease>;
  /** every subnet (both families) with a key, valid value or not: never allocate these */
  taken: Set<string>;
  /** subnet → the storage's lease id */
  leaseIds: Map<string, string>;
}

export function absorbListing(entries: readonly RegistryEntry[], onBad: (name: string, modRevision: number, problem: string) => void): Listing {
  const out: Listing = { table: new Map(), taken: new Set(), leaseIds: new Map() };
  for (const e of entries) {
    const v = readEntry(e.name, e.value, e.modRevision);
    if (v.kind === 'bad-key') {
      onBad(e.name, e.modRevision, v.problem);
      continue;
    }
    if (v.kind === 'bad-value') {
      for (const s of subnetsOf(v.subnets)) out.taken.add(s);
      onBad(e.name, e.modRevision, v.problem);
      continue;
    }
    for (const s of subnetsOf(v.lease)) out.taken.add(s);
    out.table.set(v.lease.subnet, v.lease);
    out.leaseIds.set(v.lease.subnet, e.leaseId);
  }
  return out;
}
