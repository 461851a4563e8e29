/**
 * Peer directory: the lease table becomes data-plane commands, applied as diffs.
 *
 *   leases (subnet → PublicIP, backend)  ──update()──▶  setPeer / setRoute / deleteRoute / deletePeer
 *
 * One peer per distinct endpoint (address:port), counted by the leases that use it; one route per
 * remote subnet (a dual-stack lease has two: its IPv4 and its IPv6 subnet, to the same peer, or
 * with wireguard Mode "separate" each to the peer of its family's tunnel: two legs). Peer ids are
 * the smallest free integers. The node's own subnet and leases the
 * backend cannot use are skipped; each skip is reported once (until the lease changes).
 *
 * Cost: update() with the subnets that changed touches only those (a watch event costs O(1), not
 * O(leases)); without them it compares the whole table (start, resync). Pure: no I/O, no clock.
 */
import type { Backend, Endpoint } from '../backend/backend.js';
import type { Command } from '../dataplane/commands.js';
import { IdPool } from './id-pool.js';
import { ipv4SubnetOf, subnetsOf, type Lease } from './lease.js';
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

/** The subnets of a lease that go to one peer. */
interface Leg {
  /** endpoint key of the peer */
  key: string;
  endpoint: Endpoint;
  /** each a route */
  subnets: string[];
}

/** A lease's legs: one, or two with a separate IPv6 tunnel. */
type Routed = Leg[];

const endpointKey = (e: Endpoint) => `${e.address}:${e.port}`;
const sameLegs = (a: Routed | undefined, b: Routed | undefined) =>
  (a ?? []).map((l) => `${l.key}=${l.subnets.join()}`).join(';') === (b ?? []).map((l) => `${l.key}=${l.subnets.join()}`).join(';');

/** The legs of a lease the backend can reach: every subnet to r.endpoint, or the IPv6 one apart. */
function legsOf(lease: Lease, r: Extract<ReturnType<Backend['peerOf']>, { ok: true }>): Routed {
  if (r.ipv6Endpoint === undefined) return [{ key: endpointKey(r.endpoint), endpoint: r.endpoint, subnets: subnetsOf(lease) }];
  const v4 = ipv4SubnetOf(lease);
  const legs: Routed = v4 ? [{ key: endpointKey(r.endpoint), endpoint: r.endpoint, subnets: [v4] }] : [];
  if (r.ipv6Endpoint && lease.ipv6Subnet) legs.push({ key: endpointKey(r.ipv6Endpoint), endpoint: r.ipv6Endpoint, subnets: [lease.ipv6Subnet] });
  return legs;
}

export class PeerDirectory {
  private readonly peers = new Map<string, Peer>(); // endpoint key → peer
  private readonly routes = new Map<string, Routed>(); // lease subnet (Lease.subnet) → peer and routes
  private readonly skips = new Map<string, string>(); // subnet → reason|modRevision
  private readonly ids = new IdPool();
  private readonly backend: Pick<Backend, 'peerOf'>;
  private self: string | undefined;
  private changes = 0;

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
      let want: Routed | undefined;
      if (lease) {
        const r = this.backend.peerOf(lease);
        if (r.ok) {
          want = legsOf(lease, r);
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
      if (sameLegs(want, cur)) continue;
      // routes the lease no longer has (its IPv6 subnet changed) go; the others are replaced
      const wanted = new Set((want ?? []).flatMap((l) => l.subnets));
      for (const l of cur ?? []) for (const s of l.subnets) if (!wanted.has(s)) deleteRoutes.push({ op: 'deleteRoute', subnet: s });
      for (const leg of want ?? []) {
        let p = this.peers.get(leg.key);
        if (!p) {
          p = { id: this.ids.next(), endpoint: leg.endpoint, refs: 0 };
          this.peers.set(leg.key, p);
          setPeers.push({ op: 'setPeer', peer: p.id, address: leg.endpoint.address, port: leg.endpoint.port });
        }
        p.refs++;
        for (const s of leg.subnets) setRoutes.push({ op: 'setRoute', subnet: s, peer: p.id });
      }
      if (want) this.routes.set(subnet, want);
      else this.routes.delete(subnet);
      for (const l of cur ?? []) {
        const old = this.peers.get(l.key)!;
        if (--old.refs === 0) unused.push(old);
      }
    }
    // peers left without routes go last (a route moved in this batch may have taken one back)
    const deletePeers: Command[] = [];
    for (const p of unused) {
      const key = endpointKey(p.endpoint);
      if (p.refs > 0 || this.peers.get(key) !== p) continue;
      this.peers.delete(key);
      this.ids.release(p.id);
      deletePeers.push({ op: 'deletePeer', peer: p.id });
    }
    const commands = [...setPeers, ...setRoutes, ...deleteRoutes, ...deletePeers];
    if (commands.length) this.changes++;
    return { commands, skipped };
  }

  /** grows with every update that changed a peer or route: a cheap "did anything change" */
  get revision(): number {
    return this.changes;
  }

  /** subnet → endpoint, what the data plane now holds (for health output and tests) */
  snapshot(): Record<string, string> {
    const out: Record<string, string> = {};
    for (const legs of this.routes.values()) for (const l of legs) for (const s of l.subnets) out[s] = l.key;
    return out;
  }

  /** every peer with its endpoint and the subnets routed to it, by id */
  peerList(): { id: number; endpoint: Endpoint; subnets: string[] }[] {
    const subnets = new Map<string, string[]>();
    for (const legs of this.routes.values()) {
      for (const { key, subnets: routed } of legs) {
        const list = subnets.get(key);
        if (list) list.push(...routed);
        else subnets.set(key, [...routed]);
      }
    }
    return [...this.peers].map(([key, p]) => ({ id: p.id, endpoint: { ...p.endpoint }, subnets: subnets.get(key) ?? [] })).sort((a, b) => a.id - b.id);
  }

  get routeCount(): number {
    let n = 0;
    for (const legs of this.routes.values()) for (const l of legs) n += l.subnets.length;
    return n;
  }

  get peerCount(): number {
    return this.peers.size;
  }
}
