/**
 * Cells of the impairment matrix (bench/impairment.ts) as tests: real daemons with default
 * flags on a real etcd, n1 behind the userspace netem relay, one exact TCP transfer n0 → n1
 * per cell checked by SHA-256, and the counters that say what happened on the way. Nothing
 * here asserts speed.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from '../../src/host/exec.js';
import { startImpairedPair, type ImpairedPair } from '../bed/impaired-pair.js';
import { setPortMtu } from '../bed/netem.js';

const MIB = 2 ** 20;
const BYTES = 8 * MIB;
const TIMEOUT_S = 90;

describe('encrypted mode under impairment', () => {
  let p: ImpairedPair;
  beforeAll(async () => {
    p = await startImpairedPair('encrypted', 'ifw');
  });
  afterAll(async () => {
    await p?.teardown();
  });

  it('10 % loss: the same bytes arrive', async () => {
    await p.relay.set({ loss: 0.1, seed: 11 });
    const r = await p.transfer(BYTES, TIMEOUT_S);
    expect(r.error).toBeUndefined();
    expect(r.receivedSha).toBe(r.sentSha);
    expect(r.bytes).toBe(BYTES);
    expect(r.relay.dropped).toBeGreaterThan(100);
    expect(r.drops.decrypt ?? 0).toBe(0);
  });

  it('reordering: the replay window accepts late packets (no replay drops)', async () => {
    await p.relay.set({ reorder: 0.25, reorderMs: 2, seed: 12 });
    const r = await p.transfer(BYTES, TIMEOUT_S);
    expect(r.error).toBeUndefined();
    expect(r.receivedSha).toBe(r.sentSha);
    expect(r.relay.delayed).toBeGreaterThan(100);
    // late packets are within the 8128-packet window: none may be taken for a replay
    expect(r.drops.replay ?? 0).toBe(0);
    expect(r.drops.decrypt ?? 0).toBe(0);
  });

  it('duplication: every duplicate is dropped by the replay window, the stream is exact', async () => {
    await p.relay.set({ duplicate: 0.05, seed: 13 });
    const r = await p.transfer(BYTES, TIMEOUT_S);
    expect(r.error).toBeUndefined();
    expect(r.receivedSha).toBe(r.sentSha);
    expect(r.relay.duplicated).toBeGreaterThan(100);
    // a duplicated handshake or keepalive is not a transport-data replay, so at most equal
    expect(r.drops.replay).toBeGreaterThan(0);
    expect(r.drops.replay).toBeLessThanOrEqual(r.relay.duplicated!);
    expect(r.relay.duplicated! - r.drops.replay!).toBeLessThanOrEqual(5);
  });
});

describe('plain mode under impairment', () => {
  let p: ImpairedPair;
  beforeAll(async () => {
    p = await startImpairedPair('plain', 'ifp');
  });
  afterAll(async () => {
    await p?.teardown();
  });

  it('corruption: caught by the underlay checksums, nothing corrupted reaches the TUN', async () => {
    await p.relay.set({ corrupt: 0.01, seed: 14 });
    const r = await p.transfer(BYTES, TIMEOUT_S);
    expect(r.error).toBeUndefined();
    expect(r.receivedSha).toBe(r.sentSha);
    expect(r.relay.corrupted).toBeGreaterThan(20);
    // most flips land in the UDP datagram (caught by its checksum), a few in the IP header
    expect(r.kernel.UdpInCsumErrors + r.kernel.IpInHdrErrors).toBeGreaterThan(r.relay.corrupted! / 2);
    // an inner TCP segment with a bad checksum would mean a corrupted packet went through tulle
    expect(r.kernel.TcpInCsumErrors).toBe(0);
  });

  it('a 1400-byte L2 hop stalls TCP at the default MTU; setting the underlay MTU to the path MTU fixes it', async () => {
    await p.relay.set({});
    await setPortMtu(p.bed, p.n0, 1400);
    try {
      const stalled = await p.transfer(BYTES, 15);
      expect(stalled.ok).toBe(false);
      expect(stalled.bytes).toBeLessThan(BYTES);
      expect(stalled.mtu).toBe(1472);
      // what docs/robustness.md tells users: the TUN MTU follows the underlay interface
      for (const n of [p.n0, p.n1]) await run('ip', ['-n', n.ns, 'link', 'set', 'eth0', 'mtu', '1400']);
      await p.restart();
      const r = await p.transfer(BYTES, TIMEOUT_S);
      expect(r.error).toBeUndefined();
      expect(r.receivedSha).toBe(r.sentSha);
      expect(r.mtu).toBe(1372);
    } finally {
      await setPortMtu(p.bed, p.n0, 1500);
    }
  });
});
