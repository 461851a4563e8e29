/** Diffs two lease tables (subnet → lease): what a resync after compaction emits. Pure. */
import { sameAttrs, type Lease } from './lease.js';

export type LeaseTable = ReadonlyMap<string, Lease>;

export interface LeaseDiff {
  added: Lease[];
  changed: Lease[];
  removed: Lease[];
}

export function diffLeases(before: LeaseTable, after: LeaseTable): LeaseDiff {
  const d: LeaseDiff = { added: [], changed: [], removed: [] };
  for (const [subnet, l] of after) {
    const old = before.get(subnet);
    if (!old) d.added.push(l);
    else if (!sameAttrs(old.attrs, l.attrs)) d.changed.push(l);
  }
  for (const [subnet, l] of before) if (!after.has(subnet)) d.removed.push(l);
  return d;
}

export function isEmptyDiff(d: LeaseDiff): boolean {
  return d.added.length + d.changed.length + d.removed.length === 0;
}
