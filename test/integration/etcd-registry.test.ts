/**
 * The raw registry and the lease manager against a real etcd on 127.0.0.1 (no namespaces):
 * flannel's schema, create-if-absent, compare-and-renew, watch, compaction, 30 concurrent acquirers.
 */
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseNetworkConfig } from '../../src/config/network-config.js';
import { LeaseManager } from '../../src/lease/lease-manager.js';
import { parseLeaseKeyName } from '../../src/lease/lease.js';
import { etcdRegistry } from '../../src/registry/etcd-registry.js';
import type { Registry, WatchEvent } from '../../src/registry/registry.js';
import { realClock } from '../../src/util/clock.js';
import { startEtcd, type EtcdServer } from '../bed/etcd.js';

const PREFIX = '/coreos.com/network';
const log = pino({ level: 'silent' });
let etcd: EtcdServer;
const registries: Registry[] = [];

function registry(prefix = PREFIX, listPage?: number): Registry {
  const r = etcdRegistry({ endpoints: [etcd.endpoint], prefix, ...(listPage ? { listPage } : {}) });
  registries.push(r);
  return r;
}

async function until<T>(what: string, fn: () => T | undefined | false, timeoutMs = 10_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

beforeAll(async () => {
  etcd = await startEtcd();
});

afterAll(async () => {
  await Promise.all(registries.map((r) => r.close()));
  await etcd?.destroy();
});

describe('etcd registry', () => {
  it("creates a lease in flannel's schema with a TTL, only if absent", async () => {
    const r = registry();
    await etcd.etcdctl(['put', `${PREFIX}/config`, '{"Network":"10.244.0.0/16"}']);
    expect(await r.getNetworkConfig()).toBe('{"Network":"10.244.0.0/16"}');
    const value = '{"PublicIP":"198.18.0.10","PublicIPv6":null,"BackendType":"udp"}';
    const w = await r.createSubnet('10.244.3.0-24', value, 60);
    expect(w.ok).toBe(true);
    expect((await r.createSubnet('10.244.3.0-24', value, 60)).ok).toBe(false);
    expect((await etcd.etcdctl(['get', `${PREFIX}/subnets/10.244.3.0-24`, '--print-value-only'])).trim()).toBe(value);
    const ttl = await etcd.etcdctl(['lease', 'timetolive', BigInt(w.leaseId).toString(16)]);
    expect(ttl).toMatch(/remaining\((5\d|60)s\)/);
    const listed = await r.listSubnets();
    expect(listed.entries).toEqual([{ name: '10.244.3.0-24', value, modRevision: w.modRevision, leaseId: w.leaseId }]);
    // renew: compare on our mod revision; a stale revision loses
    const renewed = await r.updateSubnet('10.244.3.0-24', value, 60, { modRevision: w.modRevision, leaseId: w.leaseId });
    expect(renewed.ok).toBe(true);
    expect(renewed.leaseId).not.toBe(w.leaseId);
    expect((await r.updateSubnet('10.244.3.0-24', value, 60, { modRevision: w.modRevision, leaseId: '0' })).ok).toBe(false);
  });

  it('watches from a revision, and asks for a resync after compaction', async () => {
    const r = registry('/t/watch');
    const base = (await r.listSubnets()).revision;
    const seen: WatchEvent[] = [];
    const resyncs: string[] = [];
    const w = r.watchSubnets(base + 1, { events: (evs) => seen.push(...evs), resync: (why) => resyncs.push(why), connection: () => undefined });
    await etcd.etcdctl(['put', '/t/watch/subnets/10.244.5.0-24', 'x']);
    await etcd.etcdctl(['del', '/t/watch/subnets/10.244.5.0-24']);
    await until('two events', () => seen.length >= 2);
    expect(seen.map((e) => [e.type, e.name])).toEqual([['put', '10.244.5.0-24'], ['delete', '10.244.5.0-24']]);
    await w.cancel();
    // compact past where a new watch would start
    await etcd.etcdctl(['put', '/t/watch/other', 'y']);
    const rev = (await r.listSubnets()).revision;
    await etcd.etcdctl(['compaction', String(rev)]);
    const w2 = r.watchSubnets(base + 1, { events: () => undefined, resync: (why) => resyncs.push(why), connection: () => undefined });
    await until('a resync', () => resyncs.length > 0);
    expect(resyncs[0]).toMatch(/canceled/);
    await w2.cancel();
  });

  it('dual stack and IPv6 only: concurrent acquirers get distinct subnets in both families (pairing and create guards on real etcd)', async () => {
    const check = async (prefix: string, text: string, n: number, leftovers: string[]) => {
      const r0 = registry(prefix);
      // IPv6 subnets taken by leftovers: nodes whose IPv4 index pairs with them must go unpaired (guarded by every key)
      for (const k of leftovers) expect((await r0.createSubnet(k, '{"PublicIP":"0.0.0.0","PublicIPv6":"fd00:198:19::1","BackendType":"udp"}', 600)).ok).toBe(true);
      const config = parseNetworkConfig(text);
      const ms = Array.from({ length: n }, (_, i) =>
        new LeaseManager({
          registry: registry(prefix), config, log, clock: realClock, random: Math.random,
          attrs: { PublicIP: config.ipv4 ? `198.18.1.${i + 1}` : '0.0.0.0', PublicIPv6: `fd00:198:18::1:${i + 1}`, BackendType: 'udp' }, ttlMs: 600_000, renewMarginMs: 60_000,
        }),
      );
      const leases = await Promise.all(ms.map((m) => m.acquire()));
      const listed = (await r0.listSubnets()).entries.map((e) => parseLeaseKeyName(e.name)!);
      expect(listed).toHaveLength(n + leftovers.length);
      const v6 = listed.map((l) => l.ipv6Subnet);
      expect(new Set(v6).size, v6.join(' ')).toBe(listed.length);
      if (config.ipv4) expect(new Set(leases.map((l) => l.subnet)).size).toBe(n);
      for (const l of leases) expect(l.ipv6Subnet).toMatch(/^fd00:10:244:[0-9a-f]+::\/64$/);
    };
    await check('/t/race6', '{"Network":"10.244.0.0/16","SubnetMin":"10.244.1.0","SubnetMax":"10.244.40.0","EnableIPv6":true,"IPv6Network":"fd00:10:244::/56"}', 24,
      ['0.0.0.0-0&fd00:10:244:5::-64', '0.0.0.0-0&fd00:10:244:6::-64', '0.0.0.0-0&fd00:10:244:7::-64']);
    await check('/t/race6only', '{"EnableIPv4":false,"EnableIPv6":true,"IPv6Network":"fd00:10:244::/58"}', 16, []);
  });

  it('lists only what changed since a revision, across pages, compacted or not', async () => {
    const r = registry('/since-test', 1000);
    const v = (i: number) => `{"PublicIP":"198.18.1.${i}","PublicIPv6":null,"BackendType":"udp"}`;
    const first = await r.createSubnet('10.244.1.0-24', v(1), 60);
    await r.createSubnet('10.244.2.0-24', v(2), 60);
    const { revision } = await r.listSubnets();
    expect(await r.listSubnetsSince!(revision)).toEqual({ revision, entries: [] });
    // after it: 1,200 creates (two pages of 1,000) and a renewal of one listed before
    const names = Array.from({ length: 1200 }, (_, i) => `10.245.${i >> 8}.${i & 255}-32`);
    for (let i = 0; i < names.length; i += 100) await Promise.all(names.slice(i, i + 100).map((n) => r.createSubnet(n, v(9), 60)));
    const renewed = await r.updateSubnet('10.244.1.0-24', v(1), 60, { modRevision: first.modRevision, leaseId: first.leaseId });
    const since = await r.listSubnetsSince!(revision);
    expect(since.revision).toBe(renewed.modRevision);
    expect(since.entries.map((e) => e.name).sort()).toEqual(['10.244.1.0-24', ...names].sort());
    expect(since.entries.every((e) => e.modRevision > revision)).toBe(true);
    // the pages an acquisition reads (bytes, strings on demand): the same entries, in pages of 1,000
    const listed = await r.listSubnets();
    const paged = await r.listSubnetPages!();
    expect(paged.revision).toBe(listed.revision);
    expect(paged.pages.map((p) => p.count)).toEqual([1000, 202]);
    expect(paged.pages.flatMap((p) => p.entries())).toEqual(listed.entries);
    expect(listed.entries.find((e) => e.name === '10.244.1.0-24')!.leaseId).toBe(renewed.leaseId);
    // a filter on the current keys, not a read of history: compaction does not matter
    await etcd.etcdctl(['compaction', String(since.revision)]);
    expect((await r.listSubnetsSince!(revision)).entries).toHaveLength(1201);
  });

  it("lists a page larger than gRPC's default 4 MiB message (values with fields flanneld ignores), both ways", async () => {
    // flanneld's etcd client takes responses up to 2 GiB; a page of LIST_PAGE keys with large
    // values must not fail with RESOURCE_EXHAUSTED where flanneld would have listed it
    const r = registry('/big-values');
    const pad = 'x'.repeat(10_000);
    const names = Array.from({ length: 500 }, (_, i) => `10.246.${i >> 8}.${i & 255}-32`);
    const v = (i: number) => `{"PublicIP":"198.18.2.${i & 255}","PublicIPv6":null,"BackendType":"udp","Note":"${pad}"}`;
    for (let i = 0; i < names.length; i += 50) await Promise.all(names.slice(i, i + 50).map((n, j) => r.createSubnet(n, v(i + j), 60)));
    const listed = await r.listSubnets();
    expect(listed.entries).toHaveLength(500);
    const paged = await r.listSubnetPages!();
    expect(paged.pages.map((p) => p.count)).toEqual([500]);
    expect(paged.pages.flatMap((p) => p.entries()).map((e) => e.value)).toEqual(listed.entries.map((e) => e.value));
  });

  it('gives 30 concurrent acquirers 30 distinct subnets', async () => {
    const prefix = '/t/race';
    const config = parseNetworkConfig('{"Network":"10.244.0.0/16","SubnetMin":"10.244.1.0","SubnetMax":"10.244.40.0"}');
    const ms = Array.from({ length: 30 }, (_, i) =>
      new LeaseManager({
        registry: registry(prefix), config, log, clock: realClock, random: Math.random,
        attrs: { PublicIP: `198.18.1.${i + 1}`, PublicIPv6: null, BackendType: 'udp' }, ttlMs: 600_000, renewMarginMs: 60_000,
      }),
    );
    const leases = await Promise.all(ms.map((m) => m.acquire()));
    expect(new Set(leases.map((l) => l.subnet)).size).toBe(30);
    const listed = await registry(prefix).listSubnets();
    expect(listed.entries).toHaveLength(30);
    // every lease in etcd names the acquirer that believes it holds it
    for (const l of leases) {
      const e = listed.entries.find((x) => x.name === l.subnet.replace('/', '-'))!;
      expect(JSON.parse(e.value).PublicIP).toBe(l.attrs.PublicIP);
    }
  });

  it('create refuses when any lease appeared after the listing; delete is conditional on the mod revision', async () => {
    const r = registry('/t/guard');
    const value = '{"PublicIP":"198.18.0.10","PublicIPv6":null,"BackendType":"udp"}';
    const listed = (await r.listSubnets()).revision;
    await etcd.etcdctl(['put', '/t/guard/subnets/10.244.8.0-23', value]);
    // a /24 inside the /23 created since the listing: refused (and so would be any other new key)
    expect((await r.createSubnet('10.244.9.0-24', value, 60, listed)).ok).toBe(false);
    const now = (await r.listSubnets()).revision;
    const w = await r.createSubnet('10.244.20.0-24', value, 60, now);
    expect(w.ok).toBe(true);
    expect(await r.deleteSubnet('10.244.20.0-24', w.modRevision - 1)).toBe(false);
    expect(await r.deleteSubnet('10.244.20.0-24', w.modRevision)).toBe(true);
    expect((await r.listSubnets()).entries.map((e) => e.name)).toEqual(['10.244.8.0-23']);
  });

  it('24 concurrent acquirers under four SubnetLens never overlap, and all get a lease', async () => {
    const prefix = '/t/mixed';
    const configs = [22, 23, 24, 26].map((len) => parseNetworkConfig(`{"Network":"10.244.0.0/16","SubnetLen":${len}}`));
    const ms = Array.from({ length: 24 }, (_, i) =>
      new LeaseManager({
        registry: registry(prefix), config: configs[i % 4]!, log, clock: realClock, random: Math.random,
        attrs: { PublicIP: `198.18.2.${i + 1}`, PublicIPv6: null, BackendType: 'udp' }, ttlMs: 600_000, renewMarginMs: 60_000,
      }),
    );
    const leases = await Promise.all(ms.map((m) => m.acquire()));
    const nets = leases.map((l) => {
      const [a, len] = l.subnet.split('/');
      const base = a!.split('.').reduce((x, o) => x * 256 + Number(o), 0);
      return [base, base + 2 ** (32 - Number(len))] as const;
    });
    const overlaps = nets.flatMap((x, i) => nets.slice(i + 1).filter((y) => x[0] < y[1] && y[0] < x[1]).map(() => i));
    expect(overlaps).toEqual([]);
    expect((await registry(prefix).listSubnets()).entries).toHaveLength(24);
  });
});
