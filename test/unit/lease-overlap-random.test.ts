/**
 * No two leases ever overlap: seeded random histories on the in-memory registry with nodes
 * that (re)start under changing configs (SubnetLen /22../26, other bounds and networks), start
 * at the same time, stop, expire, have their leases deleted and re-acquire. The registry is
 * checked after every write, so even a transient overlap fails the run. Also: a node that
 * restarts under a config its lease no longer fits ends up with exactly one lease, a fitting one.
 */
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { parseNetworkConfig } from '../../src/config/network-config.js';
import { encodeLeaseValue, parseLeaseKeyName } from '../../src/lease/lease.js';
import { isLeasable } from '../../src/lease/subnet-allocator.js';
import { LeaseManager } from '../../src/lease/lease-manager.js';
import { MemoryRegistry } from '../../src/registry/memory-registry.js';
import type { WriteResult } from '../../src/registry/registry.js';
import { parseNet } from '../../src/util/ip.js';

const net4Size = (len: number) => 2 ** (32 - len);
const parseNet4 = (s: string) => { const n = parseNet(s, 4); return { base: Number(n.base), len: n.len }; };
import { FakeClock } from './fake-clock.js';
import { seededRandom } from './seeded-random.js';

const CONFIGS = [
  '{"Network":"10.244.0.0/20"}',
  '{"Network":"10.244.0.0/20","SubnetLen":23}',
  '{"Network":"10.244.0.0/20","SubnetLen":22}',
  '{"Network":"10.244.0.0/20","SubnetLen":26}',
  '{"Network":"10.244.0.0/20","SubnetLen":25,"SubnetMin":"10.244.4.0","SubnetMax":"10.244.9.128"}',
  '{"Network":"10.244.0.0/21","SubnetLen":24}',
  '{"Network":"10.244.8.0/21","SubnetLen":23}',
];

function overlapsIn(names: string[]): string | undefined {
  const nets = names.map((n) => ({ n, s: parseLeaseKeyName(n)?.subnet })).filter((x) => x.s).map((x) => ({ n: x.n, p: parseNet4(x.s!) }));
  for (let i = 0; i < nets.length; i++) {
    for (let j = i + 1; j < nets.length; j++) {
      const a = nets[i]!.p;
      const b = nets[j]!.p;
      if (a.base < b.base + net4Size(b.len) && b.base < a.base + net4Size(a.len)) return `${nets[i]!.n} overlaps ${nets[j]!.n}`;
    }
  }
  return undefined;
}

/** The in-memory registry, checking after every successful write that no two leases overlap. */
class CheckedRegistry extends MemoryRegistry {
  violations: string[] = [];
  private async checked(p: Promise<WriteResult>): Promise<WriteResult> {
    const r = await p;
    if (r.ok) {
      const o = overlapsIn((await super.listSubnets()).entries.map((e) => e.name));
      if (o) this.violations.push(o);
    }
    return r;
  }
  override createSubnet(name: string, value: string, ttl: number, since?: number) {
    return this.checked(super.createSubnet(name, value, ttl, since));
  }
  override updateSubnet(name: string, value: string, ttl: number, expect: { modRevision: number; leaseId: string }) {
    return this.checked(super.updateSubnet(name, value, ttl, expect));
  }
}

async function history(seed: number): Promise<string[]> {
  const rnd = seededRandom(seed);
  const pick = <T>(xs: readonly T[]) => xs[Math.floor(rnd() * xs.length)]!;
  const clock = new FakeClock();
  const registry = new CheckedRegistry(clock, pick(CONFIGS));
  const problems: string[] = [];
  const NODES = 7;
  const nodes: Array<{ m: LeaseManager | undefined; acquiring: Promise<unknown> | undefined; config: string }> = Array.from({ length: NODES }, () => ({
    m: undefined, acquiring: undefined, config: '',
  }));
  const ip = (i: number) => `198.18.0.${10 + i}`;

  const start = (i: number) => {
    const node = nodes[i]!;
    const text = registry.config!;
    const config = parseNetworkConfig(text);
    const m = new LeaseManager({
      registry, clock, log: pino({ level: 'silent' }), random: rnd, config,
      attrs: { PublicIP: ip(i), PublicIPv6: null, BackendType: 'udp' }, ttlMs: 120_000, renewMarginMs: 30_000,
    });
    Object.assign(node, { m, config: text });
    node.acquiring = m.acquire().then(
      async (own) => {
        if (node.m !== m) return;
        // exactly one lease of ours in the store, and it fits the config we started with
        const mine = (await registry.listSubnets()).entries.filter((e) => e.value.includes(`"${ip(i)}"`)).map((e) => parseLeaseKeyName(e.name)!.subnet);
        if (mine.length !== 1 || mine[0] !== own.subnet || !isLeasable(config.ipv4!, own.subnet)) {
          problems.push(`node ${i} under ${text}: holds ${mine.join(',')} (acquired ${own.subnet})`);
        }
        m.start();
      },
      () => undefined, // no free subnet: fine, the run is about overlaps
    );
  };
  const stop = async (i: number) => {
    const node = nodes[i]!;
    const m = node.m;
    node.m = undefined;
    await m?.stop();
  };

  for (let step = 0; step < 60; step++) {
    const r = rnd();
    if (r < 0.35) {
      // one or several nodes (re)start together, each under the config it reads then
      const group = Array.from({ length: 1 + Math.floor(rnd() * 3) }, () => Math.floor(rnd() * NODES));
      for (const i of new Set(group)) await stop(i);
      for (const i of new Set(group)) {
        if (rnd() < 0.5) registry.config = pick(CONFIGS); // the operator changes it while nodes start
        start(i); // no await in between: their list → choose → create interleave
      }
    } else if (r < 0.5) registry.config = pick(CONFIGS);
    else if (r < 0.6) await stop(Math.floor(rnd() * NODES));
    else if (r < 0.72) {
      const e = (await registry.listSubnets()).entries;
      if (e.length) registry.delete(pick(e).name); // an operator; a running owner re-acquires
    } else if (r < 0.8) {
      // a lease of another size appears (left by a node that ran an older config)
      const len = pick([22, 23, 24, 25, 26]);
      const base = parseNet4('10.244.0.0/20').base + Math.floor(rnd() * (4096 / net4Size(len))) * net4Size(len);
      const name = `10.244.${(base >>> 8) & 255}.${base & 255}-${len}`;
      const names = (await registry.listSubnets()).entries.map((e) => e.name);
      if (!overlapsIn([...names, name])) registry.put(name, encodeLeaseValue({ PublicIP: `198.18.1.${step}`, PublicIPv6: null, BackendType: 'udp' }), 200);
    }
    await clock.advance(Math.floor(rnd() * (r < 0.9 ? 2_000 : 150_000)));
  }
  await clock.advance(10_000);
  for (let i = 0; i < NODES; i++) await stop(i);
  problems.push(...registry.violations);
  return problems;
}

describe('allocation on random histories', () => {
  it('no two leases in the registry ever overlap, over 120 seeded histories with mixed subnet lengths and config changes', async () => {
    const failures: string[] = [];
    for (let seed = 1; seed <= 120; seed++) {
      const p = await history(seed);
      if (p.length) failures.push(`seed ${seed}: ${[...new Set(p)].slice(0, 3).join('; ')}`);
    }
    expect(failures).toEqual([]);
  });
});
