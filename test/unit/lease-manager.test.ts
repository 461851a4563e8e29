import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { parseNetworkConfig } from '../../src/config/network-config.js';
import type { LeaseTable } from '../../src/lease/lease-diff.js';
import { encodeLeaseValue } from '../../src/lease/lease.js';
import { LeaseManager, type LeaseManagerOptions } from '../../src/lease/lease-manager.js';
import { MemoryRegistry } from '../../src/registry/memory-registry.js';
import { FakeClock, flush } from './fake-clock.js';

const CONFIG = '{"Network":"10.244.0.0/16","SubnetMin":"10.244.1.0","SubnetMax":"10.244.8.0"}';
const log = pino({ level: 'silent' });
const HOUR = 3600_000;

function setup(over: Partial<LeaseManagerOptions> = {}, ip = '198.18.0.10') {
  const clock = new FakeClock();
  const registry = over.registry instanceof MemoryRegistry ? over.registry : new MemoryRegistry(clock, CONFIG);
  const tables: LeaseTable[] = [];
  const m = new LeaseManager({
    registry, clock, log, random: Math.random,
    config: parseNetworkConfig(CONFIG),
    attrs: { PublicIP: ip, PublicIPv6: null, BackendType: 'udp' },
    ttlMs: 24 * HOUR, renewMarginMs: HOUR,
    onTable: (t) => tables.push(new Map(t)),
    ...over,
  });
  return { m, clock: (over.clock as FakeClock | undefined) ?? clock, registry: registry as MemoryRegistry, tables };
}

describe('lease manager', () => {
  it('acquires a subnet in range and writes a flannel lease', async () => {
    const { m, registry } = setup();
    const l = await m.acquire();
    expect(l.subnet).toMatch(/^10\.244\.[1-8]\.0\/24$/);
    expect(registry.get(l.subnet.replace('/', '-'))!.value).toBe('{"PublicIP":"198.18.0.10","PublicIPv6":null}'); // no BackendType: flanneld's udp backend omits it
  });

  it('reuses its own lease (same PublicIP) and its previous subnet', async () => {
    const { m, registry, clock } = setup();
    registry.put('10.244.5.0-24', encodeLeaseValue({ PublicIP: '198.18.0.10', PublicIPv6: null, BackendType: 'udp' }));
    expect((await m.acquire()).subnet).toBe('10.244.5.0/24');
    const again = setup({ previous: { subnet: '10.244.7.0/24' }, clock, registry: new MemoryRegistry(clock, CONFIG) });
    expect((await again.m.acquire()).subnet).toBe('10.244.7.0/24');
  });

  it('fails clearly when every subnet is taken', async () => {
    const { m, registry } = setup();
    for (let i = 1; i <= 8; i++) registry.put(`10.244.${i}.0-24`, encodeLeaseValue({ PublicIP: `1.1.1.${i}`, PublicIPv6: null, BackendType: 'udp' }));
    await expect(m.acquire()).rejects.toMatchObject({ code: 'ERR_TULLE_NO_SUBNET', message: expect.stringMatching(/all 8 \/24 subnets/) });
  });

  it('counts garbage under subnets/ as taken but never as a peer', async () => {
    const { m, registry } = setup();
    for (let i = 1; i <= 7; i++) registry.put(`10.244.${i}.0-24`, 'not json {');
    registry.put('hello', 'world');
    const l = await m.acquire();
    expect(l.subnet).toBe('10.244.8.0/24');
    expect([...m.leases.keys()]).toEqual(['10.244.8.0/24']);
  });

  it('gives 30 concurrent acquirers distinct subnets (retrying lost races)', async () => {
    const clock = new FakeClock();
    const registry = new MemoryRegistry(clock, '{"Network":"10.244.0.0/16","SubnetMin":"10.244.1.0","SubnetMax":"10.244.40.0"}');
    const ms = Array.from({ length: 30 }, (_, i) => setup({ clock, registry, config: parseNetworkConfig(registry.config!) }, `198.18.1.${i + 1}`).m);
    const all = Promise.all(ms.map((m) => m.acquire()));
    await clock.advance(10_000);
    const subnets = (await all).map((l) => l.subnet);
    expect(new Set(subnets).size).toBe(30);
  });

  it('a long run of lost races backs off and races again, never gives up (no exit for losing)', async () => {
    const { m, clock, registry } = setup();
    let lost = 0;
    const create = registry.createSubnet.bind(registry);
    // someone else wins the first 45 creates (more than two runs of 20)
    registry.createSubnet = async (...a) => (lost < 45 ? (lost++, { ok: false, modRevision: 1, leaseId: '0' }) : create(...a));
    let settled = false;
    const p = m.acquire().finally(() => (settled = true));
    await clock.advance(60_000);
    expect(settled).toBe(true);
    expect((await p).subnet).toMatch(/^10\.244\.[1-8]\.0\/24$/);
    expect(lost).toBe(45);
  });

  it('stop() ends an acquire that is waiting to retry, at once', async () => {
    const { m, clock, registry } = setup();
    registry.createSubnet = async () => ({ ok: false, modRevision: 1, leaseId: '0' });
    const p = m.acquire();
    p.catch(() => undefined);
    await clock.advance(2_000);
    await m.stop();
    await flush();
    await expect(p).rejects.toMatchObject({ code: 'ERR_TULLE_STOPPED' });
  });

  it('acquires without making the table; start() makes it from that listing, watches from it, and converges to the store', async () => {
    const { m, registry, tables } = setup();
    for (let i = 1; i <= 4; i++) registry.put(`10.244.${i}.0-24`, encodeLeaseValue({ PublicIP: `198.18.1.${i}`, PublicIPv6: null, BackendType: 'udp' }));
    const l = await m.acquire();
    expect([...m.leases.keys()]).toEqual([l.subnet]); // only our own: the acquisition decoded no one else's value
    registry.put('10.244.6.0-24', encodeLeaseValue({ PublicIP: '198.18.1.6', PublicIPv6: null, BackendType: 'udp' })); // between acquire and start
    await m.start();
    await flush(); // (the lease put after the acquisition's listing comes by the watch)
    const want = (await registry.listSubnets()).entries.map((e) => e.name.replace('-', '/')).sort();
    expect([...m.leases.keys()].sort()).toEqual(want);
    expect([...tables.at(-1)!.keys()].sort()).toEqual(want);
    registry.put('10.244.7.0-24', encodeLeaseValue({ PublicIP: '198.18.1.7', PublicIPv6: null, BackendType: 'udp' }));
    await flush();
    expect(m.leases.has('10.244.7.0/24')).toBe(true);
    await m.stop();
  });

  it('renews before expiry and keeps renewing', async () => {
    const { m, clock, registry } = setup({ ttlMs: 10_000, renewMarginMs: 4_000 });
    const l = await m.acquire();
    m.start();
    for (let i = 0; i < 5; i++) {
      await clock.advance(5_000);
      expect(registry.get(l.subnet.replace('/', '-'))).toBeDefined();
    }
    expect(m.status().lease!.renewals).toBeGreaterThanOrEqual(4);
    await m.stop();
  });

  it('re-acquires when its lease is deleted, preferring the same subnet', async () => {
    const { m, clock, registry } = setup();
    const l = await m.acquire();
    m.start();
    await flush();
    registry.delete(l.subnet.replace('/', '-'));
    await clock.advance(1000);
    expect(registry.get(l.subnet.replace('/', '-'))?.value).toContain('198.18.0.10');
    expect(m.lease!.subnet).toBe(l.subnet);
    await m.stop();
  });

  it('moves to another subnet when someone else took ours', async () => {
    const moved: string[] = [];
    const { m, clock, registry, tables } = setup({ onOwnLease: (x) => moved.push(x.subnet) });
    const l = await m.acquire();
    m.start();
    await flush();
    registry.put(l.subnet.replace('/', '-'), encodeLeaseValue({ PublicIP: '198.18.0.99', PublicIPv6: null, BackendType: 'udp' }));
    await clock.advance(1000);
    expect(m.lease!.subnet).not.toBe(l.subnet);
    expect(moved).toEqual([m.lease!.subnet]);
    // the subnet we lost now routes to its new holder
    expect(tables.at(-1)!.get(l.subnet)!.attrs.PublicIP).toBe('198.18.0.99');
    expect(tables.at(-1)!.get(m.lease!.subnet)!.attrs.PublicIP).toBe('198.18.0.10');
    await m.stop();
  });

  it('follows other leases through the watch, and resyncs after compaction', async () => {
    // random 0: our own lease is the first subnet, apart from the ones this test writes
    const { m, clock, registry, tables } = setup({ random: () => 0 });
    expect((await m.acquire()).subnet).toBe('10.244.1.0/24');
    m.start();
    await flush();
    registry.put('10.244.3.0-24', encodeLeaseValue({ PublicIP: '198.18.0.11', PublicIPv6: null, BackendType: 'udp' }));
    await flush();
    expect(tables.at(-1)!.has('10.244.3.0/24')).toBe(true);
    // disconnected: changes happen and history is compacted meanwhile
    registry.setDown(true);
    expect(m.status().etcd).toBe('disconnected');
    registry.down = false;
    registry.delete('10.244.3.0-24');
    registry.put('10.244.4.0-24', encodeLeaseValue({ PublicIP: '198.18.0.12', PublicIPv6: null, BackendType: 'udp' }));
    registry.compact();
    registry.setDown(false);
    await clock.advance(100);
    const last = tables.at(-1)!;
    const truth = (await registry.listSubnets()).entries.map((e) => e.name.replace('-', '/')).sort();
    expect([...last.keys()].sort()).toEqual(truth);
    expect(m.status().etcd).toBe('connected');
    await m.stop();
  });

  it('sees a lease created between its list and its own create', async () => {
    const { m, clock, registry, tables } = setup();
    const create = registry.createSubnet.bind(registry);
    registry.createSubnet = async (name, value, ttl) => {
      registry.put('10.244.6.0-24', encodeLeaseValue({ PublicIP: '198.18.0.11', PublicIPv6: null, BackendType: 'udp' }));
      return create(name, value, ttl);
    };
    await m.acquire(registry.get('10.244.6.0-24') ? undefined : { subnet: '10.244.2.0/24' });
    m.start();
    await clock.advance(10);
    expect(tables.at(-1)!.has('10.244.6.0/24')).toBe(true);
    await m.stop();
  });

  it('after a lost race looks only at what changed, and still learns of leases deleted meanwhile', async () => {
    const { m, clock, registry, tables } = setup();
    const other = (ip: string) => encodeLeaseValue({ PublicIP: ip, PublicIPv6: null, BackendType: 'udp' });
    registry.put('10.244.1.0-24', other('198.18.0.21'));
    const calls = { full: 0, since: 0 };
    const list = registry.listSubnets.bind(registry), since = registry.listSubnetsSince.bind(registry);
    registry.listSubnets = async () => (calls.full++, list());
    registry.listSubnetsSince = async (r) => (calls.since++, since(r));
    // the first create loses: someone takes that very subnet first, and a lease we listed goes away
    const create = registry.createSubnet.bind(registry);
    let first = true;
    registry.createSubnet = async (name, value, ttl, unchangedSince, guardAll) => {
      if (first) {
        first = false;
        registry.put(name, other('198.18.0.22'));
        registry.delete('10.244.1.0-24');
      }
      return create(name, value, ttl, unchangedSince, guardAll);
    };
    const acquired = m.acquire({ subnet: '10.244.3.0/24' });
    await clock.advance(10_000); // (the retry waits a little, on the fake clock)
    const l = await acquired;
    expect(l.subnet).not.toBe('10.244.3.0/24');
    expect(calls).toEqual({ full: 1, since: 1 }); // one listing of everything, then only the change
    expect(registry.get('10.244.3.0-24')!.value).toBe(other('198.18.0.22'));
    // the watch starts from the full listing: the deletion it did not see is applied
    m.start();
    await clock.advance(10);
    expect([...tables.at(-1)!.keys()].sort()).toEqual(['10.244.3.0/24', l.subnet].sort());
    await m.stop();
  });

  it('keeps retrying renewal while etcd is down and recovers', async () => {
    const { m, clock, registry } = setup({ ttlMs: 20_000, renewMarginMs: 10_000 });
    const l = await m.acquire();
    m.start();
    await flush();
    registry.setDown(true);
    await clock.advance(15_000);
    expect(m.status().etcd).toBe('disconnected');
    expect(m.status().lastError).toMatch(/down/);
    registry.setDown(false);
    await clock.advance(6_000);
    expect(m.status().lease!.renewals).toBeGreaterThanOrEqual(1);
    expect(registry.get(l.subnet.replace('/', '-'))).toBeDefined();
    await m.stop();
  });

  it('backs off when etcd cancels every watch at once (no hot loop)', async () => {
    const { m, clock, registry } = setup();
    let lists = 0;
    const list = registry.listSubnets.bind(registry);
    registry.listSubnets = async () => (lists++, list());
    registry.watchSubnets = (_from, sink) => {
      queueMicrotask(() => sink.resync('canceled'));
      return { cancel: async () => undefined };
    };
    await m.acquire();
    m.start();
    await clock.advance(30_000);
    expect(lists).toBeGreaterThan(3); // it keeps trying
    expect(lists).toBeLessThan(30); // but not in a tight loop
    await m.stop();
  });

  it('waits for etcd at start instead of failing', async () => {
    const { m, clock, registry } = setup();
    registry.down = true;
    let done = false;
    const p = m.acquire().then((l) => ((done = true), l));
    await clock.advance(3000);
    expect(done).toBe(false);
    expect(m.status().etcd).toBe('disconnected');
    registry.down = false;
    await clock.advance(6000);
    expect((await p).subnet).toMatch(/^10\.244\./);
  });
});
