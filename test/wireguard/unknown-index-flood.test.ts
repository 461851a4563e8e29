/**
 * The "unknown index" report is attacker-reachable (issue 16): transport data under an index the
 * node does not know makes the data plane tell TypeScript, which may initiate a handshake. A
 * flood of such datagrams must cost a trie lookup and a hash each: from a stranger's address no
 * report at all; from a peer's address but another port, at most one report per 250 ms for that
 * source and no initiation (not the peer's endpoint); the event ring never fills; pings go on.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { createBed, type Bed, type BedNode } from '../bed/bed.js';
import { startEncryptedMesh, type EncryptedMesh } from '../bed/encrypted-mesh.js';

const SENDER = path.resolve('test/bed/send-datagrams.mjs');
const COUNT = 20_000;

describe('a flood of transport data under unknown indices', () => {
  let bed: Bed;
  let mesh: EncryptedMesh;
  let attacker: BedNode;
  let dir: string;
  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'tulle-uiflood-'));
    bed = await createBed({ nodes: 2, tag: 'uif' });
    attacker = await bed.addHost('attacker', 66);
    mesh = await startEncryptedMesh(bed);
  });
  afterAll(async () => {
    mesh?.stop();
    await bed?.teardown();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const a = () => mesh.nodes[0]!;
  const b = () => mesh.nodes[1]!;

  async function flood(from: BedNode): Promise<number> {
    const file = path.join(dir, `${from.ns}.hex`);
    writeFileSync(file, Array.from({ length: COUNT }, () => Buffer.concat([Buffer.from([4, 0, 0, 0]), randomBytes(12 + 64)]).toString('hex')).join('\n'));
    const t0 = performance.now();
    await bed.exec(from.ns, process.execPath, [SENDER, file, b().node.underlayIp, '51820']);
    return (performance.now() - t0) / 1000;
  }

  it('from a stranger: counted as unknown index, never reported', async () => {
    const before = b().enc.dataPlane.counters();
    const dev0 = { ...b().enc.device.counters };
    await flood(attacker);
    const after = b().enc.dataPlane.counters();
    expect(after.inbound_drop_unknown_index! - before.inbound_drop_unknown_index!).toBeGreaterThan(BigInt(COUNT / 10));
    expect(after.inbound_wg_unknown_index_reports).toBe(before.inbound_wg_unknown_index_reports);
    expect(b().enc.device.counters.unknown_index_reports).toBe(dev0.unknown_index_reports);
    expect(b().enc.device.counters.initiations_sent).toBe(dev0.initiations_sent);
  });

  it('from a peer address, another port: at most one report per 250 ms, no initiation, pings go on', async () => {
    const before = b().enc.dataPlane.counters();
    const dev0 = { ...b().enc.device.counters };
    const pings = bed.exec(a().node.ns, 'ping', ['-n', '-c', '10', '-i', '0.1', '-W', '2', b().address]);
    const wall = await flood(a().node);
    const p = await pings;
    const after = b().enc.dataPlane.counters();
    const dropped = after.inbound_drop_unknown_index! - before.inbound_drop_unknown_index!;
    const reports = Number(after.inbound_wg_unknown_index_reports! - before.inbound_wg_unknown_index_reports!);
    console.log(`unknown-index flood from a peer address: ${dropped} dropped in ${wall.toFixed(1)} s, ${reports} reported`);
    expect(dropped).toBeGreaterThan(BigInt(COUNT / 10));
    expect(reports).toBeGreaterThanOrEqual(1);
    expect(reports).toBeLessThanOrEqual(Math.ceil(wall / 0.25) + 2);
    expect(after.inbound_drop_handshake_queue_full).toBe(before.inbound_drop_handshake_queue_full);
    await new Promise((r) => setTimeout(r, 300)); // let the device drain the last report
    b().enc.device.drain();
    const d = b().enc.device.counters;
    expect(d.unknown_index_reports - dev0.unknown_index_reports).toBe(reports);
    expect(d.unknown_index_handshakes).toBe(dev0.unknown_index_handshakes);
    expect(d.initiations_sent).toBe(dev0.initiations_sent);
    expect(p.stdout).toMatch(/10 received/);
  });
});
