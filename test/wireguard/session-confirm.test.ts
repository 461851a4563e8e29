/**
 * Staged packets must leave once a usable session exists (issue 8, item 4, points 1 and 2):
 *  - a session installed while the plain outbound loop waits for the table lock must not look
 *    older than the clock the loop read (it used to read the clock before taking the lock: the
 *    fresh session looked ~2^64 ms old, the packet was staged and nothing ever flushed it);
 *  - a responder's session, confirmed by the initiator's first packet, must carry what was
 *    staged while it waited (only an initiator's install used to flush).
 * A bare encrypted data plane on node a; node b's side is played by this test with its own keys.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBed, stopProcess, type Bed } from '../bed/bed.js';
import { pollUntil } from '../bed/proc.js';
import { seal, sendTrains } from '../bed/trains.js';
import { startDataPlane, type Command, type DataPlane } from '../../src/dataplane/dataplane.js';
import { configureTun } from '../../src/host/link.js';

const MTU = 1420;

describe.each([{ offload: false }, { offload: true }])('staged packets and new sessions, offload $offload', ({ offload }) => {
  let bed: Bed;
  let dp: DataPlane;
  let dir: string;
  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'tulle-confirm-'));
    bed = await createBed({ nodes: 2, tag: 'sc' });
    const a = bed.nodes[0]!;
    dp = startDataPlane({ netns: a.nsPath, bindAddress: a.underlayIp, port: 51820, mtu: MTU, encrypted: true, offload, onEvents: () => undefined });
    await configureTun({ name: dp.tunName, netnsName: a.ns, addresses: ['10.244.0.0/32'], mtu: MTU, routes: ['10.244.0.0/16'] });
  });
  afterAll(async () => {
    dp?.stop();
    await bed?.teardown();
    rmSync(dir, { recursive: true, force: true });
  });

  const stuck = (c: Record<string, bigint>) =>
    c.outbound_wg_staged! - c.control_wg_sent_packets! - (c.inbound_wg_staged_sent ?? 0n);

  it('a session installed while the outbound loop waits for the lock is used at once', async () => {
    const [a, b] = bed.nodes as [Bed['nodes'][0], Bed['nodes'][0]];
    dp.apply([
      { op: 'setPeer', peer: 1, address: b.underlayIp, port: 51820 },
      { op: 'setRoute', subnet: '10.244.1.0/24', peer: 1 },
    ]);
    // a long write-locked batch (many routes) that ends with the install: packets read from the
    // TUN meanwhile wait for the lock with the clock they read before it
    const filler: Command[] = Array.from({ length: 200_000 }, (_, i) => ({
      op: 'setRoute',
      subnet: `10.${100 + (i >> 16)}.${(i >> 8) & 255}.${i & 255}/32`,
      peer: 1,
    }));
    const install: Command = { op: 'installSession', peer: 1, localIndex: 0x10001, remoteIndex: 0x777, role: 'current', sendKey: randomBytes(32), receiveKey: randomBytes(32) };
    const ping = bed.spawn(a.ns, 'ping', ['-c', '20000', '-i', '0.002', '-W', '1', '10.244.1.1']);
    try {
      await pollUntil(() => (dp.counters().outbound_wg_staged! > 0n ? true : undefined), 'first packet staged');
      const t0 = Date.now();
      dp.apply([...filler, install]);
      expect(Date.now() - t0).toBeGreaterThan(20); // long enough for packets to wait on the lock
      // packets keep coming after the install, and are sealed at once
      await pollUntil(() => (dp.counters().outbound_sent_packets! >= 50n ? true : undefined), 'packets sent on the new session', 20_000);
    } finally {
      await stopProcess(ping);
    }
    const c = await pollUntil(() => {
      const now = dp.counters();
      return stuck(now) === 0n ? now : undefined;
    }, 'staged packets sent', 2_000).catch(() => dp.counters());
    // every packet staged went out with the install's flush; none was staged after it
    expect(stuck(c)).toBe(0n);
  });

  it("a responder's session carries what was staged once the initiator's first packet confirms it", async () => {
    const [a, b] = bed.nodes as [Bed['nodes'][0], Bed['nodes'][0]];
    const recvKey = randomBytes(32);
    const local = 0x30003;
    dp.apply([
      { op: 'setPeer', peer: 3, address: b.underlayIp, port: 51823 },
      { op: 'setRoute', subnet: '10.244.3.0/24', peer: 3 },
      { op: 'installSession', peer: 3, localIndex: local, remoteIndex: 0x888, role: 'next', sendKey: randomBytes(32), receiveKey: recvKey },
    ]);
    const before = dp.counters();
    await bed.exec(a.ns, 'sh', ['-c', 'ping -c 5 -i 0.05 -W 1 10.244.3.1 >/dev/null || true']);
    const staged = dp.counters().outbound_wg_staged! - before.outbound_wg_staged!;
    expect(staged).toBe(5n); // a responder may not send before the initiator spoke
    // the initiator's first message: a keepalive on the session
    await sendTrains(bed, b, path.join(dir, 'keepalive.bin'), [[seal(recvKey, local, 0n, new Uint8Array(0))]], a.underlayIp, 51820);
    await pollUntil(() => (dp.counters().inbound_wg_keepalives! > before.inbound_wg_keepalives! ? true : undefined), 'keepalive received');
    const c = await pollUntil(() => {
      const now = dp.counters();
      return stuck(now) === 0n ? now : undefined;
    }, 'staged packets sent', 5_000).catch(() => dp.counters());
    expect(stuck(c)).toBe(0n);
    expect((c.inbound_wg_staged_sent ?? 0n) - (before.inbound_wg_staged_sent ?? 0n)).toBe(5n);
  });
});
