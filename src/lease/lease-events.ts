/**
 * Watch events applied to a lease table in place: O(events), not O(leases). Pure: says which
 * subnets changed, whether our own lease was deleted or taken (→ re-acquire), and our lease
 * with a newer mod revision when the watch shows our own renewal.
 */
import type { WatchEvent } from '../registry/registry.js';
import { readEntry } from './lease-entry.js';
import type { OwnLease } from './lease-manager-types.js';
import { parseLeaseKeyName, sameAttrs, type Lease } from './lease.js';

export interface EventsApplied {
  changed: Set<string>;
  lostOwn: boolean;
  /** our lease, updated (newer mod revision and etcd lease), when the events show our own write */
  own?: OwnLease;
}

export function applyWatchEvents(
  table: Map<string, Lease>, evs: readonly WatchEvent[], own: OwnLease | undefined, onBad: (name: string, modRevision: number, problem: string) => void,
): EventsApplied {
  const out: EventsApplied = { changed: new Set(), lostOwn: false };
  for (const ev of evs) {
    if (ev.type === 'delete') {
      const subnet = parseLeaseKeyName(ev.name)?.subnet;
      if (!subnet) continue;
      if (table.delete(subnet)) out.changed.add(subnet);
      if (own?.subnet === subnet) out.lostOwn = true;
      continue;
    }
    const v = readEntry(ev.name, ev.value, ev.modRevision);
    if (v.kind !== 'lease') {
      onBad(ev.name, ev.modRevision, v.problem);
      if (v.kind === 'bad-value') {
        if (table.delete(v.subnets.subnet)) out.changed.add(v.subnets.subnet);
        if (own?.subnet === v.subnets.subnet) out.lostOwn = true;
      }
      continue;
    }
    const { lease } = v;
    const old = table.get(lease.subnet);
    table.set(lease.subnet, lease);
    if (!old || !sameAttrs(old.attrs, lease.attrs)) out.changed.add(lease.subnet);
    if (own?.subnet === lease.subnet) {
      if (sameAttrs(lease.attrs, own.attrs)) {
        if (ev.modRevision > own.modRevision) own = out.own = { ...own, modRevision: ev.modRevision, leaseId: ev.leaseId };
      } else {
        out.lostOwn = true; // someone else wrote our subnet
      }
    }
  }
  return out;
}
