/**
 * The lease manager against random histories on the in-memory registry: other nodes join and
 * leave, someone deletes or steals our lease, garbage is written, history is compacted, the
 * store goes down and comes back. After things settle, the manager's table must equal the valid
 * leases in the store, and the store must hold our lease. Seeded: every run is the same.
 */
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { parseNetworkConfig } from '../../src/config/network-config.js';
import { encodeLeaseValue } from '../../src/lease/lease.js';
import { readEntry } from '../../src/lease/lease-entry.js';
import { LeaseManager } from '../../src/lease/lease-manager.js';
import { MemoryRegistry } from '../../src/registry/memory-registry.js';
import { FakeClock } from './fake-clock.js';
import { seededRandom } from './seeded-random.js';

const CONFIG = '{"Network":"10.244.0.0/16","SubnetMin":"10.244.1.0","SubnetMax":"10.244.12.0"}';
const ME = '198.18.0.10';


async function scenario(seed: number): Promise<string[]> {
  const rnd = seededRandom(seed);
  const pick = <T>(xs: T[]) => xs[Math.floor(rnd() * xs.length)]!;
  const clock = new FakeClock();
  const registry = new MemoryRegistry(clock, CONFIG);
  const m = new LeaseManager({
    registry, clock, log: pino({ level: 'silent' }), random: rnd, config: parseNetworkConfig(CONFIG),
    attrs: { PublicIP: ME, PublicIPv6: null, BackendType: 'udp' }, ttlMs: 60_000, renewMarginMs: 20_000,
  });
  const subnets = Array.from({ length: 12 }, (_, i) => `10.244.${i + 1}.0-24`);
  const other = (i: number) => encodeLeaseValue({ PublicIP: `198.18.0.${50 + i}`, PublicIPv6: null, BackendType: 'udp' });
  for (let i = 0; i < 4; i++) registry.put(pick(subnets), other(i));
  await m.acquire();
  m.start();
  for (let step = 0; step < 40; step++) {
    const r = rnd();
    const free = subnets.filter((s) => !registry.get(s));
    if (r < 0.25 && free.length > 1) registry.put(pick(free), other(Math.floor(rnd() * 20)));
    else if (r < 0.4) registry.delete(pick(subnets));
    else if (r < 0.45 && m.lease) registry.delete(m.lease.subnet.replace('/', '-'));
    else if (r < 0.5 && m.lease) registry.put(m.lease.subnet.replace('/', '-'), other(99)); // stolen
    else if (r < 0.55) registry.put(pick(subnets), pick(['garbage', '{"PublicIP":1}', '[]']));
    else if (r < 0.65) registry.compact();
    else if (r < 0.75) {
      registry.setDown(true);
      registry.down = false; // writes by others while we are cut off
      if (free.length > 1) registry.put(pick(free), other(Math.floor(rnd() * 20)));
      registry.delete(pick(subnets));
      if (rnd() < 0.5) registry.compact();
      registry.down = true;
      await clock.advance(Math.floor(rnd() * 30_000));
      registry.setDown(false);
    }
    await clock.advance(Math.floor(rnd() * 10_000));
  }
  // settle: no more interference, time for retries, renewals and resyncs. If others (and
  // garbage) filled every subnet, having no lease is right: free one so we can check recovery.
  if (subnets.every((s) => registry.get(s)) && !registry.get(m.lease?.subnet.replace('/', '-') ?? '')?.value.includes(ME)) {
    registry.delete(subnets.find((s) => !registry.get(s)!.value.includes(ME))!);
  }
  await clock.advance(70_000);
  const problems: string[] = [];
  const store = new Map<string, string>();
  for (const e of (await registry.listSubnets()).entries) {
    const v = readEntry(e.name, e.value, e.modRevision);
    if (v.kind === 'lease') store.set(v.lease.subnet, encodeLeaseValue(v.lease.attrs));
  }
  const mine = [...store].filter(([, v]) => v.includes(`"${ME}"`)).map(([s]) => s);
  if (!m.lease) problems.push('no lease');
  else if (!mine.includes(m.lease.subnet)) problems.push(`our lease ${m.lease.subnet} is not in the store (${mine.join(',') || 'none'})`);
  const table = new Map([...m.leases].map(([s, l]) => [s, encodeLeaseValue(l.attrs)]));
  const a = JSON.stringify([...table].sort());
  const b = JSON.stringify([...store].sort());
  if (a !== b) problems.push(`table ${a} != store ${b}`);
  await m.stop();
  return problems;
}

describe('lease manager on random histories', () => {
  it('converges to the store, holding a lease, in 150 seeded scenarios', async () => {
    const failures: string[] = [];
    for (let seed = 1; seed <= 150; seed++) {
      const p = await scenario(seed);
      if (p.length) failures.push(`seed ${seed}: ${p.join('; ')}`);
    }
    expect(failures).toEqual([]);
  });
});
