/**
 * The peer directory fed only the changed subnets (what the watch gives) must program the same
 * data plane as one that compares the whole table every time, and as the table itself says: a
 * model data plane replays the commands and is checked after every step. Seeded random tables
 * (shared endpoints, moved endpoints, other backend types, our own subnet moving). Also the id
 * pool against a brute-force "smallest free id".
 */
import { describe, expect, it } from 'vitest';
import { udpBackend } from '../../src/backend/udp-backend.js';
import type { Command } from '../../src/dataplane/commands.js';
import { IdPool } from '../../src/lease/id-pool.js';
import type { Lease } from '../../src/lease/lease.js';
import { PeerDirectory } from '../../src/lease/peer-directory.js';
import { seededRandom } from './seeded-random.js';

const noStart = () => {
  throw new Error('not in unit tests');
};

/** replays commands like the native side: peers by id, routes subnet → peer id */
class ModelPlane {
  peers = new Map<number, string>();
  routes = new Map<string, number>();
  apply(cmds: Command[]) {
    for (const c of cmds) {
      if (c.op === 'setPeer') {
        expect(this.peers.has(c.peer), `setPeer ${c.peer} while in use`).toBe(false);
        this.peers.set(c.peer, `${c.address}:${c.port}`);
      } else if (c.op === 'deletePeer') {
        expect([...this.routes.values()]).not.toContain(c.peer);
        this.peers.delete(c.peer);
      } else if (c.op === 'setRoute') {
        expect(this.peers.has(c.peer), `route to unknown peer ${c.peer}`).toBe(true);
        this.routes.set(c.subnet, c.peer);
      } else if (c.op === 'deleteRoute') {
        this.routes.delete(c.subnet);
      }
    }
  }
  view(): Record<string, string> {
    return Object.fromEntries([...this.routes].map(([s, id]) => [s, this.peers.get(id)!]).sort());
  }
}

function expected(table: Map<string, Lease>, self: string | undefined): Record<string, string> {
  const out: Array<[string, string]> = [];
  for (const [s, l] of table) if (s !== self && l.attrs.BackendType === 'udp') out.push([s, `${l.attrs.PublicIP}:8285`]);
  return Object.fromEntries(out.sort());
}

describe('peer directory, incremental', () => {
  it('programs what a full comparison programs, in 100 seeded runs', () => {
    for (let seed = 1; seed <= 100; seed++) {
      const rnd = seededRandom(seed);
      const pick = (n: number) => Math.floor(rnd() * n);
      const table = new Map<string, Lease>();
      const inc = new PeerDirectory(udpBackend(8285, noStart));
      const full = new PeerDirectory(udpBackend(8285, noStart));
      const a = new ModelPlane();
      const b = new ModelPlane();
      let self: string | undefined;
      let rev = 1;
      for (let step = 0; step < 60; step++) {
        const changed = new Set<string>();
        for (let k = 1 + pick(4); k > 0; k--) {
          const subnet = `10.244.${pick(30)}.0/24`;
          changed.add(subnet);
          if (rnd() < 0.25) table.delete(subnet);
          else {
            table.set(subnet, {
              subnet, modRevision: rev++,
              attrs: { PublicIP: `198.18.0.${10 + pick(12)}`, PublicIPv6: null, BackendType: rnd() < 0.1 ? 'vxlan' : 'udp' },
            });
          }
        }
        if (rnd() < 0.05) self = `10.244.${pick(30)}.0/24`;
        a.apply(inc.update(table, self, changed).commands);
        b.apply(full.update(table, self).commands);
        const want = expected(table, self);
        expect(a.view(), `seed ${seed} step ${step}`).toEqual(want);
        expect(b.view(), `seed ${seed} step ${step}`).toEqual(want);
        expect(inc.snapshot()).toEqual(want);
        expect(inc.routeCount).toBe(Object.keys(want).length);
        expect(inc.peerCount).toBe(new Set(Object.values(want)).size);
        expect(a.peers.size).toBe(inc.peerCount); // no peer left behind without routes
        // ids stay dense: every id is at most the number of peers ever needed at once
        for (const id of a.peers.keys()) expect(id).toBeLessThanOrEqual(12);
      }
    }
  });

  it('costs O(changes) per event: 20,000 leases, then 1,000 single changes, fast', () => {
    const dir = new PeerDirectory(udpBackend(8285, noStart));
    const table = new Map<string, Lease>();
    const lease = (i: number, ip = i): Lease => ({
      subnet: `10.${(i >> 8) & 255}.${i & 255}.0/24`, modRevision: i,
      attrs: { PublicIP: `198.19.${(ip >> 8) & 255}.${ip & 255}`, PublicIPv6: null, BackendType: 'udp' },
    });
    for (let i = 0; i < 20_000; i++) table.set(lease(i).subnet, lease(i));
    const first = dir.update(table, undefined);
    expect(first.commands.filter((c) => c.op === 'setPeer').map((c) => (c as { peer: number }).peer).at(-1)).toBe(20_000);
    const t0 = performance.now();
    for (let i = 0; i < 1000; i++) {
      const l = lease(i, 30_000 + i);
      table.set(l.subnet, l);
      const u = dir.update(table, undefined, [l.subnet]);
      expect(u.commands.map((c) => c.op)).toEqual(['setPeer', 'setRoute', 'deletePeer']);
    }
    // a full comparison per change would be 20,000 × 1,000 steps; generous for a loaded machine
    expect(performance.now() - t0).toBeLessThan(5000);
  });
});

describe('id pool', () => {
  it('hands out the smallest free id, as a brute-force set does', () => {
    const rnd = seededRandom(7);
    const pool = new IdPool();
    const used = new Set<number>();
    for (let i = 0; i < 20_000; i++) {
      if (used.size && rnd() < 0.45) {
        const ids = [...used];
        const id = ids[Math.floor(rnd() * ids.length)]!;
        used.delete(id);
        pool.release(id);
      } else {
        let want = 1;
        while (used.has(want)) want++;
        const got = pool.next();
        expect(got).toBe(want);
        used.add(got);
      }
    }
  });
});
