/**
 * In-memory registry with etcd's semantics where the lease manager depends on them: revisions,
 * create-if-absent, compare-mod-revision, TTL expiry on an injected clock, compaction, outages.
 * The fake for unit tests; the real etcd is exercised by the integration tests.
 */
import type { Clock } from '../util/clock.js';
import { TulleError } from '../util/errors.js';
import { guardPrefixes, matchesAny } from './overlap-guard.js';
import type { Registry, RegistryEntry, WatchEvent, WatchSink, WriteResult } from './registry.js';

interface Stored extends RegistryEntry {
  expiresAt: number;
  createRevision: number;
}

export class MemoryRegistry implements Registry {
  config: string | undefined;
  revision = 1;
  compacted = 0;
  down = false;
  private readonly keys = new Map<string, Stored>();
  private readonly history: Array<{ rev: number; ev: WatchEvent }> = [];
  private readonly watchers = new Set<{ next: number; sink: WatchSink }>();
  private nextLease = 100;
  private readonly clock: Clock;

  constructor(clock: Clock, config?: string) {
    this.clock = clock;
    this.config = config;
  }

  private check(): void {
    if (this.down) throw new TulleError('ERR_TULLE_ETCD', 'memory registry is down');
    this.expire();
  }

  async getNetworkConfig() {
    this.check();
    return this.config;
  }

  async listSubnets() {
    this.check();
    return { entries: [...this.keys.values()].map(({ expiresAt: _e, createRevision: _c, ...e }) => e), revision: this.revision };
  }

  async listSubnetsSince(revision: number) {
    this.check();
    const entries = [...this.keys.values()].filter((k) => k.modRevision > revision).map(({ expiresAt: _e, createRevision: _c, ...e }) => e);
    return { entries, revision: this.revision };
  }

  async createSubnet(name: string, value: string, ttlSeconds: number, unchangedSince?: number, guardAll?: boolean): Promise<WriteResult> {
    this.check();
    if (this.keys.has(name)) return { ok: false, modRevision: this.revision, leaseId: '0' };
    const guard = unchangedSince === undefined ? [] : guardPrefixes(name, guardAll);
    if (unchangedSince !== undefined && [...this.keys.values()].some((k) => k.createRevision > unchangedSince && matchesAny(k.name, guard))) {
      return { ok: false, modRevision: this.revision, leaseId: '0' };
    }
    return this.write(name, value, ttlSeconds);
  }

  async updateSubnet(name: string, value: string, ttlSeconds: number, expect: { modRevision: number }): Promise<WriteResult> {
    this.check();
    if (this.keys.get(name)?.modRevision !== expect.modRevision) return { ok: false, modRevision: this.revision, leaseId: '0' };
    return this.write(name, value, ttlSeconds);
  }

  async deleteSubnet(name: string, expectModRevision: number): Promise<boolean> {
    this.check();
    if (this.keys.get(name)?.modRevision !== expectModRevision) return false;
    this.delete(name);
    return true;
  }

  /** What a person with etcdctl can do: put anything, delete anything. */
  put(name: string, value: string, ttlSeconds = 3600): void {
    this.write(name, value, ttlSeconds);
  }

  delete(name: string): void {
    if (!this.keys.delete(name)) return;
    this.record({ type: 'delete', name, modRevision: ++this.revision });
  }

  get(name: string): RegistryEntry | undefined {
    this.expire();
    return this.keys.get(name);
  }

  /** Drops history up to the current revision; watchers behind it must resync. */
  compact(): void {
    this.compacted = this.revision;
    this.history.length = 0;
  }

  setDown(down: boolean): void {
    this.down = down;
    for (const w of this.watchers) w.sink.connection(!down);
    if (!down) for (const w of this.watchers) this.deliver(w);
  }

  /** Expires keys whose TTL passed on the clock (etcd does this by itself). */
  expire(): void {
    const now = this.clock.now();
    for (const [name, e] of this.keys) if (e.expiresAt <= now) this.delete(name);
  }

  watchSubnets(fromRevision: number, sink: WatchSink) {
    const w = { next: fromRevision, sink };
    this.watchers.add(w);
    queueMicrotask(() => this.deliver(w));
    return { cancel: async () => void this.watchers.delete(w) };
  }

  async close() {
    this.watchers.clear();
  }

  private write(name: string, value: string, ttlSeconds: number): WriteResult {
    const modRevision = ++this.revision;
    const leaseId = String(this.nextLease++);
    const createRevision = this.keys.get(name)?.createRevision ?? modRevision;
    this.keys.set(name, { name, value, modRevision, leaseId, expiresAt: this.clock.now() + ttlSeconds * 1000, createRevision });
    this.record({ type: 'put', name, value, modRevision, leaseId });
    return { ok: true, modRevision, leaseId };
  }

  private record(ev: WatchEvent): void {
    this.history.push({ rev: ev.modRevision, ev });
    for (const w of this.watchers) this.deliver(w);
  }

  private deliver(w: { next: number; sink: WatchSink }): void {
    if (this.down || !this.watchers.has(w)) return;
    if (w.next <= this.compacted) {
      this.watchers.delete(w);
      w.sink.resync(`required revision ${w.next} has been compacted (at ${this.compacted})`);
      return;
    }
    const evs = this.history.filter((h) => h.rev >= w.next).map((h) => h.ev);
    if (!evs.length) return;
    w.next = this.revision + 1;
    w.sink.events(evs, this.revision);
  }
}
