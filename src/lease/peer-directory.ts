/**
 * Peer directory: the lease table becomes data-plane commands, applied as diffs.
 *
 *   leases (subnet → PublicIP, backend)  ──update()──▶  setPeer / setRoute / deleteRoute / deletePeer
 *
 * One peer per distinct endpoint (address:port); one route per remote subnet. Peer ids are the
 * smallest free integers. The node's own subnet and leases the backend cannot use are skipped;
 * each skip is reported once (until the lease changes). Pure: no I/O, no clock.
 */
import type { Backend, Endpoint } from '../backend/backend.js';
import type { Command } from '../dataplane/commands.js';
import type { Lease } from './lease.js';
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

export class PeerDirectory {
  private readonly peers = new Map<string, { id: number; endpoint: Endpoint }>();
  private readonly routes = new Map<string, string>(); // subnet → endpoint key
  private readonly skips = new Map<string, string>(); // subnet → reason|value
  private readonly backend: Pick<Backend, 'peerOf'>;

  constructor(backend: Pick<Backend, 'peerOf'>) {
    this.backend = backend;
  }

  update(table: LeaseTable, self: string | undefined): DirectoryUpdate {
    const wantRoutes = new Map<string, string>();
    const wantPeers = new Map<string, Endpoint>();
    const skipped: Skip[] = [];
    const skipNow = new Map<string, string>();
    for (const [subnet, lease] of table) {
      if (subnet === self) continue;
      const r = this.backend.peerOf(lease);
      if (!r.ok) {
        const mark = `${r.reason}|${lease.modRevision}`;
        skipNow.set(subnet, mark);
        if (this.skips.get(subnet) !== mark) skipped.push({ lease, reason: r.reason });
        continue;
      }
      const key = `${r.endpoint.address}:${r.endpoint.port}`;
      wantRoutes.set(subnet, key);
      wantPeers.set(key, r.endpoint);
    }
    this.skips.clear();
    for (const [k, v] of skipNow) this.skips.set(k, v);

    const commands: Command[] = [];
    for (const [key, endpoint] of wantPeers) {
      if (this.peers.has(key)) continue;
      const id = this.freeId();
      this.peers.set(key, { id, endpoint });
      commands.push({ op: 'setPeer', peer: id, address: endpoint.address, port: endpoint.port });
    }
    for (const [subnet, key] of wantRoutes) {
      if (this.routes.get(subnet) === key) continue;
      this.routes.set(subnet, key);
      commands.push({ op: 'setRoute', subnet, peer: this.peers.get(key)!.id });
    }
    for (const subnet of [...this.routes.keys()]) {
      if (wantRoutes.has(subnet)) continue;
      this.routes.delete(subnet);
      commands.push({ op: 'deleteRoute', subnet });
    }
    for (const [key, p] of [...this.peers]) {
      if (wantPeers.has(key)) continue;
      this.peers.delete(key);
      commands.push({ op: 'deletePeer', peer: p.id });
    }
    return { commands, skipped };
  }

  /** subnet → endpoint, what the data plane now holds (for health output and tests) */
  snapshot(): Record<string, string> {
    return Object.fromEntries(this.routes);
  }

  /** every peer with its endpoint and the subnets routed to it, by id */
  peerList(): { id: number; endpoint: Endpoint; subnets: string[] }[] {
    const subnets = new Map<string, string[]>();
    for (const [subnet, key] of this.routes) subnets.set(key, [...(subnets.get(key) ?? []), subnet]);
    return [...this.peers].map(([key, p]) => ({ id: p.id, endpoint: { ...p.endpoint }, subnets: subnets.get(key) ?? [] })).sort((a, b) => a.id - b.id);
  }

  get peerCount(): number {
    return this.peers.size;
  }

  private freeId(): number {
    const used = new Set([...this.peers.values()].map((p) => p.id));
    let id = 1;
    while (used.has(id)) id++;
    return id;
  }
}
