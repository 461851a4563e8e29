/** The per-endpoint policy of the etcd registry: skip a failed member for a while, never all of them. */
import { describe, expect, it } from 'vitest';
import { hostPolicies, isHostFault } from '../../src/registry/etcd-registry.js';

const unavailable = Object.assign(new Error('14 UNAVAILABLE: etcdserver: no leader'), { code: 14 });
const appError = Object.assign(new Error('etcdserver: mvcc: required revision has been compacted'), { code: 11 });

describe('etcd host policies', () => {
  it('classifies transport failures as host faults, request errors not', () => {
    expect(isHostFault(unavailable)).toBe(true);
    expect(isHostFault(Object.assign(new Error('deadline'), { code: 4 }))).toBe(true);
    expect(isHostFault(Object.assign(new Error('2 UNKNOWN: context deadline exceeded'), { code: 2 }))).toBe(true);
    expect(isHostFault(appError)).toBe(false);
  });

  it('skips a host after a fault while another is usable, and tries it again after the cooldown', async () => {
    let now = 1000;
    const make = hostPolicies(10_000, () => now);
    const [a, b] = [make('a'), make('b')];
    a.register();
    b.register();
    await expect(a.execute(() => Promise.reject(unavailable))).rejects.toBe(unavailable);
    let called = false;
    await expect(a.execute(async () => (called = true))).rejects.toThrow(/failed recently/);
    expect(called).toBe(false);
    expect(await b.execute(async () => 'b ok')).toBe('b ok');
    now += 10_001;
    expect(await a.execute(async () => 'a ok')).toBe('a ok');
  });

  it('never skips every host: with all of them failed, calls go through', async () => {
    let now = 0;
    const make = hostPolicies(10_000, () => now);
    const [a, b] = [make('a'), make('b')];
    a.register();
    b.register();
    await expect(a.execute(() => Promise.reject(unavailable))).rejects.toBe(unavailable);
    await expect(b.execute(() => Promise.reject(unavailable))).rejects.toBe(unavailable);
    expect(await a.execute(async () => 1)).toBe(1);
    // a single endpoint is never skipped
    const solo = hostPolicies(10_000, () => now)('only');
    solo.register();
    await expect(solo.execute(() => Promise.reject(unavailable))).rejects.toBe(unavailable);
    expect(await solo.execute(async () => 2)).toBe(2);
  });

  it('a request error does not put the host aside', async () => {
    const make = hostPolicies(10_000, () => 0);
    const [a, b] = [make('a'), make('b')];
    a.register();
    b.register();
    await expect(a.execute(() => Promise.reject(appError))).rejects.toBe(appError);
    expect(await a.execute(async () => 'still used')).toBe('still used');
  });
});
