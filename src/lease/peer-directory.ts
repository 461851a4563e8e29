/**
 * Peer directory: the lease table becomes data-plane commands, applied as diffs.
 *
 *   leases (subnet → PublicIP, backend)  ──update()──▶  setPeer / setRoute / deleteRoute / deletePeer
 *
 * One peer per distinct endpoint (address:port), counted by the leases that use it; one route per
 * remote subnet (a dual-stack lease has two: its IPv4 and its IPv6 subnet, to the same peer). Peer ids are the smallest free integers. The node's own subnet and leases the
 * backend cannot use are skipped; each skip is reported once (until the lease changes).
 *
 * Cost: update() with the subnets that changed touches only those (a watch event costs O(1), not
 * O(leases)); without them it compares the whole table (start, resync). Pure: no I/O, no clock.
 */
import type { Backend, Endpoint } from '../backend/backend.js';
import type { Command } from '../dataplane/commands.js';
import { IdPool } from './id-pool.js';
import { subnetsOf, type Lease } from './lease.js';
import type { LeaseTable } from './lease-diff.js';

export interface Skip {
  lease: Lease;
  reason: string;
}

export interface DirectoryUpdate {
  commands: Command[];
  /** leases skipped for the first time (log them once) */
  skipped: Skip[];
}

interface Peer {
  id: number;
  endpoint: Endpoint;
  /** leases routed through this peer */
  refs: number;
}

interface Routed {
  /** endpoint key of the peer */
  key: string;
  /** the lease's subnets, each a route */
  subnets: string[];
}

export class PeerDirectory {
  private readonly peers = new Map<string, Peer>(); // endpoint key → peer
  private readonly routes = new Map<string, Routed>(); // lease subnet (Lease.subnet) → peer and routes
  private readonly skips = new Map<string, string>(); // subnet → reason|modRevision
  private readonly ids = new IdPool();
  private readonly backend: Pick<Backend, 'peerOf'>;
  private self: string | undefined;

  constructor(backend: Pick<Backend, 'peerOf'>) {
    this.backend = backend;
  }

  /**
   * Brings the data plane to `table`. `changed`: the subnets added, changed or removed since the
   * last call (from the watch); omitted, every subnet is compared.
   */
  update(table: LeaseTable, self: string | undefined, changed?: Iterable<string>): DirectoryUpdate {
    let subnets: Iterable<string>;
    if (changed === undefined) {
      subnets = new Set([...table.keys(), ...this.routes.keys(), ...this.skips.keys()]);
    } else {
      const s = new Set(changed);
      if (self !== this.self) for (const x of [self, this.self]) if (x !== undefined) s.add(x);
      subnets = s;
    }
    this.self = self;
    const setPeers: Command[] = [];
    const setRoutes: Command[] = [];
    const deleteRoutes: Command[] = [];
    const unused: Peer[] = [];
    const skipped: Skip[] = [];
    for (const subnet of subnets) {
      const lease = subnet === self ? undefined : table.get(subnet);
      let want: { key: string; endpoint: Endpoint; subnets: string[] } | undefined;
      if (lease) {
        const r = this.backend.peerOf(lease);
        if (r.ok) {
          want = { key: `${r.endpoint.address}:${r.endpoint.port}`, endpoint: r.endpoint, subnets: subnetsOf(lease) };
          this.skips.delete(subnet);
        } else {
          const mark = `${r.reason}|${lease.modRevision}`;
          if (this.skips.get(subnet) !== mark) skipped.push({ lease, reason: r.reason });
          this.skips.set(subnet, mark);
        }
      } else {
        this.skips.delete(subnet);
      }
      const cur = this.routes.get(subnet);
      if (want?.key === cur?.key && want?.subnets.join() === cur?.subnets.join()) continue;
      // routes the lease no longer has (its IPv6 subnet changed) go; the others are replaced
      for (const s of cur?.subnets ?? []) if (!want?.subnets.includes(s)) deleteRoutes.push({ op: 'deleteRoute', subnet: s });
      if (want) {
        let p = this.peers.get(want.key);
        if (!p) {
          p = { id: this.ids.next(), endpoint: want.endpoint, refs: 0 };
          this.peers.set(want.key, p);
          setPeers.push({ op: 'setPeer', peer: p.id, address: want.endpoint.address, port: want.endpoint.port });
        }
        p.refs++;
        this.routes.set(subnet, { key: want.key, subnets: want.subnets });
        for (const s of want.subnets) setRoutes.push({ op: 'setRoute', subnet: s, peer: p.id });
      } else {
        this.routes.delete(subnet);
      }
      if (cur !== undefined) {
        const old = this.peers.get(cur.key)!;
        if (--old.refs === 0) unused.push(old);
      }
    }
    // peers left without routes go last (a route moved in this batch may have taken one back)
    const deletePeers: Command[] = [];
    for (const p of unused) {
      const key = `${p.endpoint.address}:${p.endpoint.port}`;
      if (p.refs > 0 || this.peers.get(key) !== p) continue;
      this.peers.delete(key);
      this.ids.release(p.id);
      deletePeers.push({ op: 'deletePeer', peer: p.id });
    }
    return { commands: [...setPeers, ...setRoutes, ...deleteRoutes, ...deletePeers], skipped };
  }

  /** subnet → endpoint, what the data plane now holds (for health output and tests) */
  snapshot(): Record<string, string> {
    const out: Record<string, string> = {};
    for (const r of this.routes.values()) for (const s of r.subnets) out[s] = r.key;
    return out;
  }

  /** every peer with its endpoint and the subnets routed to it, by id */
  peerList(): { id: number; endpoint: Endpoint; subnets: string[] }[] {
    const subnets = new Map<string, string[]>();
    for (const { key, subnets: routed } of this.routes.values()) {
      const list = subnets.get(key);
      if (list) list.push(...routed);
      else subnets.set(key, [...routed]);
    }
    return [...this.peers].map(([key, p]) => ({ id: p.id, endpoint: { ...p.endpoint }, subnets: subnets.get(key) ?? [] })).sort((a, b) => a.id - b.id);
  }

  get routeCount(): number {
    let n = 0;
    for (const r of this.routes.values()) n += r.subnets.length;
    return n;
  }

  get peerCount(): number {
    return this.peers.size;
  }
}
