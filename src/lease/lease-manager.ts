/**
 * The lease manager: policy on top of the raw registry (design.md §3).
 *
 *   acquire   list → reuse this node's lease (same PublicIP) → else its previous subnet if free
 *             → else a random free subnet (acquire-once.ts); create-if-absent; a lost race retries
 *             from what changed since (acquire-view.ts; after a run of lost races, back off
 *             first); no free subnet is an error. etcd errors: wait and retry. The lease table
 *             is made from the listing when first needed, not by the acquisition.
 *   renew     margin before expiry (up to RENEW_SPREAD of the margin earlier, at random: spread),
 *             compare-and-put on our mod revision; retried while etcd is
 *             away; a failed compare means the lease was taken or deleted → re-acquire.
 *   watch     from the listed revision; the registry resumes after reconnects; a resync
 *             (compaction) re-lists and emits the diff. Our own lease deleted → re-acquire.
 *   assigned  where the registry assigns this node's subnet (Kubernetes: podCIDR), acquire
 *             waits until there is one and claims it instead of choosing; it must lie in the
 *             Network (else fatal, as flanneld); nothing is deleted (assigned-subnet.ts).
 *
 * Nothing here tears the data plane down: while etcd is away the table stays as it was.
 */
import type { RegistryEntry, Watch, WatchEvent } from '../registry/registry.js';
import { backoffMs } from '../util/backoff.js';
import { sleep } from '../util/clock.js';
import { TulleError } from '../util/errors.js';
import { acquireOnce } from './acquire-once.js';
import { AcquireView, ourNeedle } from './acquire-view.js';
import { AssignedSubnet, storedAttrs } from './assigned-subnet.js';
import { diffLeases, isEmptyDiff, type LeaseTable } from './lease-diff.js';
import { absorbListing } from './lease-entry.js';
import { applyWatchEvents } from './lease-events.js';
import type { EtcdState, LeaseManagerOptions, LeaseStatus, OwnLease } from './lease-manager-types.js';
import { encodeLeaseValue, leaseKeyName, type Lease, type LeaseAttrs, type LeaseSubnets } from './lease.js';

export type { EtcdState, LeaseManagerOptions, LeaseStatus, OwnLease } from './lease-manager-types.js';

/** renewals start up to this share of the margin early, at random: nodes that booted together
 * (a cluster start, a join storm) do not all renew in the same second 23 hours later */
export const RENEW_SPREAD = 0.1;
/** creates of one free subnet refused because other leases appeared meanwhile, before it counts as a lost race */
const MAX_RECHECKS = 200;
/** how often an assignment that is not there yet is asked for again */
const ASSIGNMENT_POLL_MS = 1000;
/** errors acquire() gives up on: retrying cannot help */
const FATAL = new Set(['ERR_TULLE_NO_SUBNET', 'ERR_TULLE_POD_CIDR']);

export class LeaseManager {
  private readonly o: LeaseManagerOptions;
  private table = new Map<string, Lease>();
  private own: OwnLease | undefined;
  private revision = 0;
  private watch: Watch | undefined;
  private cancelRenew: (() => void) | undefined;
  private stopped = false;
  private reacquiring: Promise<void> | undefined;
  private renewedAt = 0;
  private renewals = 0;
  private readonly badSeen = new Map<string, number>(); // name → mod revision logged
  private listedLeaseIds = new Map<string, string>(); // subnet → etcd lease id, from the last list
  /** the last acquisition's listing, until start() makes the table from it */
  private pending: AcquireView | undefined;
  private lastResyncAt = -Infinity;
  private resyncStreak = 0;
  private state: { etcd: EtcdState; since: number; lastError: string | undefined };
  /** set where the registry assigns our subnet (Kubernetes) */
  private readonly assigned: AssignedSubnet | undefined;
  /** aborted by stop(): every wait ends at once, so a stopped manager holds no timer */
  private readonly halt = new AbortController();

  constructor(o: LeaseManagerOptions) {
    this.o = o;
    this.state = { etcd: 'connecting', since: o.clock.now(), lastError: undefined };
    o.registry.useFamilies?.({ ipv4: o.config.ipv4 !== undefined, ipv6: o.config.ipv6 !== undefined });
    this.assigned = o.registry.assignedSubnet ? new AssignedSubnet(o.registry, o.config, o.log) : undefined;
  }

  /** for log lines: what holds the leases */
  private get store(): string {
    return this.o.registry.storeName ?? 'etcd';
  }

  get lease(): OwnLease | undefined {
    return this.own;
  }

  get leases(): LeaseTable {
    return this.table;
  }

  status(): LeaseStatus {
    const o = this.own;
    return {
      ...this.state,
      lease: o && { subnet: o.subnet, ipv6Subnet: o.ipv6Subnet, expiresAt: o.expiresAt, renewedAt: this.renewedAt, renewals: this.renewals },
      revision: this.revision,
      leases: this.table.size,
      reacquiring: this.reacquiring !== undefined,
    };
  }

  /** Gets this node a lease; waits out etcd outages, throws on exhaustion or endless races. */
  async acquire(previous = this.o.previous): Promise<OwnLease> {
    const max = this.o.maxAttempts ?? 20;
    let failures = 0;
    // a create refused only because some lease appeared since our listing: if that lease does not
    // overlap the subnet we tried, try the same subnet again; that is not a lost race (a booting
    // cluster creates many leases at once)
    let tried: LeaseSubnets | undefined;
    let recheck = 0;
    // what this acquisition knows of etcd (acquire-view.ts): one full listing, then only what
    // changed since each time it looks again — a storm of joiners at 10,000 leases must not list
    // (or decode) every lease on every refused create or lost race
    let view: AcquireView | undefined;
    const needle = ourNeedle(this.o.attrs, this.o.config.ipv4 !== undefined);
    const isOurs = (l: Lease) => this.isOurs(l, this.o.attrs);
    for (let attempt = 1; ; ) {
      if (this.stopped) throw new TulleError('ERR_TULLE_STOPPED', 'lease manager stopped');
      let assigned: LeaseSubnets | undefined;
      if (this.assigned) {
        assigned = await this.assignment();
        if (assigned === undefined) continue;
      }
      // (an assigned subnet needs no look at the other leases: the table comes from start())
      if (assigned === undefined) {
        try {
          if (view && this.o.registry.listSubnetsSince) {
            view.absorb(await this.o.registry.listSubnetsSince(view.revision));
          } else {
            const r = this.o.registry;
            view = new AcquireView(r.listSubnetPages ? await r.listSubnetPages() : await r.listSubnets(), needle, isOurs);
          }
          this.setEtcd('connected');
        } catch (e) {
          view = undefined; // list everything again
          this.setEtcd('disconnected', e as Error);
          this.o.log.warn({ err: (e as Error).message }, `cannot reach ${this.store} to acquire a lease; retrying`);
          await this.wait(backoffMs(++failures, this.o.random));
          continue;
        }
        failures = 0;
        if (tried !== undefined) {
          if (view.overlaps(tried) || ++recheck > MAX_RECHECKS) {
            // lost: choose again from this look (the create's guard catches what appears meanwhile)
            tried = undefined;
            attempt = await this.lostRace(attempt + 1, max);
            if (this.stopped) continue;
          } else {
            // many nodes booting at once: spread the retries so they do not hammer etcd in lockstep
            await this.wait(Math.floor(this.o.random() * 10 * Math.min(recheck, 20)));
          }
        }
      }
      let result: OwnLease | undefined;
      try {
        const r = assigned !== undefined ? await this.claim(assigned) : await acquireOnce(this.o, view!, tried ?? previous);
        result = r.lease;
        tried = r.tried;
      } catch (e) {
        if (e instanceof TulleError && FATAL.has(e.code)) throw e;
        // the view stays: a create that timed out may have been made after all, and the next look
        // at what changed then shows it as ours (reused, as after a restart)
        this.setEtcd('disconnected', e as Error);
        this.o.log.warn({ err: (e as Error).message }, `${this.store} failed while acquiring a lease; retrying`);
        await this.wait(backoffMs(1, this.o.random));
        continue;
      }
      if (result) {
        const old = this.own;
        this.own = result;
        this.renewedAt = this.o.clock.now();
        // the acquisition decoded only the values that may be ours: the table is the one we had
        // (before start(), which makes it from this view's listing; newer than this view under a
        // running watch). The watch starts from the full listing, not from our own write: leases
        // created in between must be seen, and deletions since (which the changes-only looks do
        // not show) applied
        if (!this.watch && view) this.pending = view;
        const next = new Map(this.table);
        if (old && old.subnet !== result.subnet && this.isOurs(next.get(old.subnet), old.attrs)) next.delete(old.subnet);
        next.set(result.subnet, result);
        this.replaceTable(next);
        this.o.log.info({ subnet: result.subnet, attempt }, 'lease acquired');
        return result;
      }
      // (tried set: the next round looks at what changed whether it was a lost race)
      if (tried === undefined) {
        view = undefined; // our own lease changed under us, or a stale one could not be deleted: list everything
        attempt = await this.lostRace(attempt + 1, max);
      }
    }
  }

  /** After a lost race: retry soon (from what changed since); after `max` in a row, back off longer.
   *  Losing is not a reason to exit (flanneld exits here). Returns the next attempt number. */
  private async lostRace(attempt: number, max: number): Promise<number> {
    if (attempt > max) {
      this.o.log.warn({ attempts: max }, `lost the race for a subnet ${max} times in a row; backing off before trying again`);
      await this.wait(backoffMs(6, this.o.random));
      return 1;
    }
    this.o.log.debug({ attempt }, 'lost the race for a subnet; retrying');
    await this.wait(Math.floor(this.o.random() * 20 * attempt));
    return attempt;
  }

  private wait(ms: number): Promise<void> {
    return sleep(this.o.clock, ms, this.halt.signal);
  }

  /** The subnets the registry assigns us; undefined after waiting a while (none yet, or the store is away). */
  private async assignment(): Promise<LeaseSubnets | undefined> {
    try {
      const subnet = await this.assigned!.ask();
      this.setEtcd('connected');
      if (subnet !== undefined) return subnet;
      this.state.lastError = this.assigned!.waiting;
      await this.wait(ASSIGNMENT_POLL_MS);
    } catch (e) {
      if (e instanceof TulleError && FATAL.has(e.code)) throw e;
      this.setEtcd('disconnected', e as Error);
      this.o.log.warn({ err: (e as Error).message }, 'cannot learn our assigned subnet; retrying');
      await this.wait(backoffMs(2, this.o.random));
    }
    return undefined;
  }

  /** Claims the assigned subnets (no choice; no race to lose but a changed assignment). */
  private async claim(subnets: LeaseSubnets): Promise<{ lease?: OwnLease; tried?: LeaseSubnets }> {
    const { attrs, ttlMs, clock } = this.o;
    const c = await this.assigned!.claim(subnets, attrs, Math.max(1, Math.ceil(ttlMs / 1000)));
    if (!c) return {};
    return { lease: { subnet: subnets.subnet, ipv6Subnet: subnets.ipv6Subnet, attrs: c.attrs, modRevision: c.r.modRevision, leaseId: c.r.leaseId, expiresAt: clock.now() + ttlMs } };
  }

  /**
   * Whether a lease is this node's: same PublicIP, as flanneld matches; an IPv6-only network has
   * no IPv4 address to match (flanneld's leases all say 0.0.0.0 there), so PublicIPv6.
   */
  private isOurs(l: Lease | undefined, attrs: LeaseAttrs): boolean {
    if (!l) return false;
    return this.o.config.ipv4 ? l.attrs.PublicIP === attrs.PublicIP : l.attrs.PublicIPv6 !== null && l.attrs.PublicIPv6 === attrs.PublicIPv6;
  }

  /** Listed entries → table of valid leases and the set of subnets taken (valid or not). */
  private absorb(entries: RegistryEntry[]): { table: Map<string, Lease>; taken: Set<string> } {
    const l = absorbListing(entries, (name, rev, problem) => this.reportBad(name, rev, problem));
    this.listedLeaseIds = l.leaseIds;
    return l;
  }

  private reportBad(name: string, modRevision: number, problem: string): void {
    if (this.badSeen.get(name) === modRevision) return;
    this.badSeen.set(name, modRevision);
    this.o.log.warn({ key: name, problem }, 'skipping malformed lease');
  }

  /**
   * Starts renewing, makes the table (onTable) from the acquisition's listing — or lists every
   * lease when it made none (an assigned subnet) — and watches from that listing; call after
   * acquire(). Resolves once the table is made (retrying while etcd is away) or on stop().
   */
  start(): Promise<void> {
    this.scheduleRenew();
    const p = this.pending;
    this.pending = undefined;
    if (!p) return this.listAndWatch();
    // the acquisition's listing (a daemon lists once): decoded now, watched from its revision
    const { table } = this.absorb(p.entries());
    if (this.own) table.set(this.own.subnet, this.own);
    this.replaceTable(table);
    this.revision = p.base;
    this.startWatch(p.base + 1);
    return Promise.resolve();
  }

  private startWatch(from: number): void {
    if (this.stopped) return;
    this.watch = this.o.registry.watchSubnets(from, {
      events: (evs, revision) => this.onEvents(evs, revision),
      resync: (reason) => {
        this.o.log.warn({ reason }, 'lease watch must resync; re-listing');
        this.watch = undefined;
        void this.resync();
      },
      connection: (up, err) => {
        this.setEtcd(up ? 'connected' : 'disconnected', err);
        this.o.log[up ? 'info' : 'warn']({ err: err?.message }, up ? `${this.store} watch connected` : `${this.store} watch disconnected; forwarding with the last known table`);
        if (up && this.own && this.renewOverdue()) this.scheduleRenew(0);
      },
    });
  }

  /** Applies watch events to the table in place (lease-events.ts): O(events), not O(leases). */
  private onEvents(evs: WatchEvent[], revision: number): void {
    const table = this.table;
    const r = applyWatchEvents(table, evs, this.own, (name, rev, problem) => this.reportBad(name, rev, problem));
    if (r.own) this.own = r.own;
    this.revision = Math.max(this.revision, revision);
    if (r.changed.size) this.o.onTable?.(table, r.changed);
    if (r.lostOwn && this.own) {
      this.o.log.warn({ subnet: this.own.subnet }, `our lease was deleted or taken in ${this.store}; re-acquiring`);
      const holder = table.get(this.own.subnet);
      this.reacquire(!holder || this.isOurs(holder, this.own.attrs));
    }
  }

  private async resync(): Promise<void> {
    // a watch that etcd cancels again right away must not turn into a hot list/watch loop
    const now = this.o.clock.now();
    this.resyncStreak = now - this.lastResyncAt < 5000 ? this.resyncStreak + 1 : 0;
    this.lastResyncAt = now;
    if (this.resyncStreak > 0) await this.wait(backoffMs(this.resyncStreak, this.o.random));
    await this.listAndWatch();
  }

  /** The table from a full listing, then a watch from it; our lease missing from it → re-acquire. */
  private async listAndWatch(): Promise<void> {
    for (let failures = 0; !this.stopped; ) {
      try {
        const listed = await this.o.registry.listSubnets();
        const { table } = this.absorb(listed.entries);
        this.revision = listed.revision;
        const own = this.own;
        const mineThere = own && table.get(own.subnet);
        if (own && (!mineThere || encodeLeaseValue(mineThere.attrs) !== encodeLeaseValue(own.attrs))) {
          this.replaceTable(table);
          this.o.log.warn({ subnet: own.subnet }, 'our lease is gone after resync; re-acquiring');
          this.startWatch(listed.revision + 1);
          this.reacquire(!mineThere || this.isOurs(mineThere, own.attrs));
          return;
        }
        if (own && mineThere) this.own = { ...own, modRevision: mineThere.modRevision, leaseId: this.listedLeaseIds.get(own.subnet) ?? own.leaseId };
        this.replaceTable(table);
        this.startWatch(listed.revision + 1);
        return;
      } catch (e) {
        this.setEtcd('disconnected', e as Error);
        await this.wait(backoffMs(++failures, this.o.random));
      }
    }
  }

  /** Re-acquire after losing our lease; prefer the same subnet when it is free again. */
  private reacquire(sameSubnetFree: boolean): void {
    if (this.reacquiring || this.stopped) return;
    const old = this.own;
    this.cancelRenew?.();
    this.reacquiring = (async () => {
      for (let failures = 0; !this.stopped; ) {
        try {
          const l = await this.acquire(sameSubnetFree ? old : undefined);
          this.scheduleRenew();
          if (!old || leaseKeyName(l) !== leaseKeyName(old)) this.o.onOwnLease?.(l);
          return;
        } catch (e) {
          if (this.stopped) return;
          this.o.log.error({ err: (e as Error).message }, 'cannot re-acquire a lease; will retry');
          await this.wait(backoffMs(++failures, this.o.random) * 4);
        }
      }
    })().finally(() => {
      this.reacquiring = undefined;
    });
  }

  private renewOverdue(): boolean {
    return !!this.own && this.o.clock.now() >= this.own.expiresAt - this.o.renewMarginMs;
  }

  private scheduleRenew(delayMs?: number): void {
    this.cancelRenew?.();
    if (this.stopped || !this.own) return;
    const early = Math.floor(this.o.random() * this.o.renewMarginMs * RENEW_SPREAD);
    const ms = delayMs ?? Math.max(0, this.own.expiresAt - this.o.renewMarginMs - early - this.o.clock.now());
    this.cancelRenew = this.o.clock.setTimer(() => void this.renew(1), ms);
  }

  private async renew(failures: number): Promise<void> {
    const own = this.own;
    if (!own || this.stopped || this.reacquiring) return;
    const ttlSeconds = Math.max(1, Math.ceil(this.o.ttlMs / 1000));
    try {
      const r = await this.o.registry.updateSubnet(leaseKeyName(own), encodeLeaseValue(own.attrs), ttlSeconds, {
        modRevision: own.modRevision,
        leaseId: own.leaseId,
      });
      // (the watch may have delivered our own write first and updated this.own: same subnet, fine)
      const cur = this.own;
      if (this.stopped || !cur || cur.subnet !== own.subnet) return;
      if (!r.ok) {
        this.o.log.warn({ subnet: own.subnet }, 'lease renewal found the lease changed or gone; re-acquiring');
        const holder = this.table.get(own.subnet);
        this.reacquire(!holder || this.isOurs(holder, own.attrs));
        return;
      }
      this.own = { ...cur, attrs: storedAttrs(r, cur.attrs), modRevision: Math.max(cur.modRevision, r.modRevision), leaseId: r.leaseId, expiresAt: this.o.clock.now() + this.o.ttlMs };
      this.renewedAt = this.o.clock.now();
      this.renewals++;
      this.setEtcd('connected');
      this.o.log.info({ subnet: own.subnet, expiresAt: new Date(this.own.expiresAt).toISOString() }, 'lease renewed');
      this.scheduleRenew();
    } catch (e) {
      this.setEtcd('disconnected', e as Error);
      const wait = backoffMs(failures, this.o.random);
      this.o.log.warn({ err: (e as Error).message, retryInMs: wait }, 'lease renewal failed; retrying');
      this.cancelRenew = this.o.clock.setTimer(() => void this.renew(failures + 1), wait);
    }
  }

  private replaceTable(next: Map<string, Lease>): void {
    const d = diffLeases(this.table, next);
    this.table = next;
    if (!isEmptyDiff(d) || next.size === 0) this.o.onTable?.(next);
  }

  private setEtcd(etcd: EtcdState, err?: Error): void {
    if (etcd === 'connected') this.state.lastError = undefined;
    else if (err) this.state.lastError = err.message;
    if (this.state.etcd !== etcd) this.state = { etcd, since: this.o.clock.now(), lastError: this.state.lastError };
  }

  /** Stops watching and renewing; the lease stays in etcd for reuse (as flannel does). */
  async stop(): Promise<void> {
    this.stopped = true;
    this.halt.abort();
    this.cancelRenew?.();
    const w = this.watch;
    this.watch = undefined;
    await w?.cancel();
  }
}
