/**
 * Outbound packets for a peer without a session: staged (bounded), a handshake requested, and
 * flushed, in order, once the session is installed.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBed, type Bed } from '../bed/bed.js';
import { startEncryptedMesh, type EncryptedMesh } from '../bed/encrypted-mesh.js';
import { pollUntil } from '../bed/proc.js';
import { overlaySubnet } from '../bed/mesh.js';

const STAGE_PER_PEER = 32; // native/src/wg.h WG_STAGE_PER_PEER

describe('staging while a handshake is pending', () => {
  let bed: Bed;
  let mesh: EncryptedMesh;
  beforeAll(async () => {
    bed = await createBed({ nodes: 2, tag: 'wgs' });
    mesh = await startEncryptedMesh(bed, { handshake: false });
  });
  afterAll(async () => {
    mesh?.stop();
    await bed?.teardown();
  });

  it('stages at most 32 packets, asks for a handshake, and flushes them when it completes', async () => {
    const [n0, n1] = mesh.nodes as [EncryptedMesh['nodes'][0], EncryptedMesh['nodes'][0]];
    // node 1 does not know node 0 yet: node 0's initiations go unanswered
    n1.enc.removePeer(0, [overlaySubnet(0)]);
    await bed.exec(n0.node.ns, 'sh', ['-c', `ping -c 50 -i 0.002 -W 1 ${n1.address} >/dev/null || true`]);
    const c = n0.enc.dataPlane.counters();
    expect(c.outbound_wg_staged).toBe(BigInt(STAGE_PER_PEER));
    expect(c.outbound_drop_stage_full).toBe(50n - BigInt(STAGE_PER_PEER));
    expect(c.outbound_sent_packets).toBe(0n);
    expect(c.outbound_wg_handshake_requests).toBeGreaterThanOrEqual(1n);
    expect(n0.enc.device.counters.initiations_sent).toBeGreaterThanOrEqual(1);
    // node 1 learns node 0; node 0 retries and the staged packets go out with the new session
    n1.enc.addPeer({ id: 0, publicKey: n0.publicKey, endpoint: { address: n0.node.underlayIp, port: 51820 }, subnets: [overlaySubnet(0)] });
    n0.enc.device.initiate(1);
    await pollUntil(() => (n1.enc.dataPlane.counters().inbound_delivered_packets! >= BigInt(STAGE_PER_PEER) ? true : undefined), 'staged packets delivered');
    expect(n0.enc.dataPlane.counters().control_wg_sent_packets).toBe(BigInt(STAGE_PER_PEER));
  });
});
