/**
 * Keys zeroed after 3 × RejectAfterTime without a new handshake (shortened here): the device
 * retires every session of the peer on both sides (native keys wiped), and the next packet is
 * staged and starts a new handshake.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBed, type Bed } from '../bed/bed.js';
import { startEncryptedMesh, type EncryptedMesh } from '../bed/encrypted-mesh.js';
import { pollUntil } from '../bed/proc.js';

describe('session expiry', () => {
  let bed: Bed;
  let mesh: EncryptedMesh;
  beforeAll(async () => {
    bed = await createBed({ nodes: 2, tag: 'wge' });
    mesh = await startEncryptedMesh(bed, { timing: { zeroKeysAfterMs: 3000, rekeyTimeoutMs: 500 } });
  });
  afterAll(async () => {
    mesh?.stop();
    await bed?.teardown();
  });

  it('retires all sessions after the zero-keys time, and a new packet handshakes again', async () => {
    const [n0, n1] = mesh.nodes as [EncryptedMesh['nodes'][0], EncryptedMesh['nodes'][0]];
    expect(n0.enc.device.sessionsOf(1).length).toBe(1);
    const first = await bed.exec(n0.node.ns, 'ping', ['-c', '1', '-W', '2', n1.address]);
    expect(first.stdout).toMatch(/1 received/);
    await pollUntil(() => (n0.enc.device.sessionsOf(1).length === 0 && n1.enc.device.sessionsOf(0).length === 0 ? true : undefined), 'keys zeroed', 10_000);
    expect(n0.enc.device.counters.sessions_retired).toBeGreaterThanOrEqual(1);
    const before = n0.enc.device.counters.sessions_installed;
    const again = await bed.exec(n0.node.ns, 'ping', ['-c', '2', '-i', '0.2', '-W', '2', n1.address]);
    expect(again.stdout).toMatch(/2 received/);
    expect(n0.enc.device.counters.sessions_installed).toBe(before + 1);
    expect(n0.enc.dataPlane.counters().outbound_wg_staged).toBeGreaterThanOrEqual(1n);
  });
});
