/**
 * What one registry entry under subnets/ is: a lease, a valid subnet key with a value we cannot
 * use (the subnet is still taken), or not a lease key at all. Pure.
 */
import type { RegistryEntry } from '../registry/registry.js';
import { decodeLeaseValue, parseSubnetKeyName, type Lease } from './lease.js';

export type EntryView =
  | { kind: 'lease'; lease: Lease }
  | { kind: 'bad-value'; subnet: string; problem: string }
  | { kind: 'bad-key'; problem: string };

export function readEntry(name: string, value: string, modRevision: number): EntryView {
  const subnet = parseSubnetKeyName(name);
  if (!subnet) return { kind: 'bad-key', problem: 'key is not a subnet (want e.g. 10.244.3.0-24)' };
  const d = decodeLeaseValue(value);
  if (!d.ok) return { kind: 'bad-value', subnet, problem: d.problem };
  return { kind: 'lease', lease: { subnet, attrs: d.attrs, modRevision } };
}

export interface Listing {
  /** valid leases by subnet */
  table: Map<string, Lease>;
  /** every subnet with a key, valid value or not: never allocate these */
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
      out.taken.add(v.subnet);
      onBad(e.name, e.modRevision, v.problem);
      continue;
    }
    out.taken.add(v.lease.subnet);
    out.table.set(v.lease.subnet, v.lease);
    out.leaseIds.set(v.lease.subnet, e.leaseId);
  }
  return out;
}
