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

describe('reject after time', () => {
  it('refuses a session past RejectAfterTime (shortened): the next packet waits for a new handshake', async () => {
    const bed2 = await createBed({ nodes: 2, tag: 'wgj' });
    try {
      const mesh2 = await startEncryptedMesh(bed2, { timing: { rejectAfterTimeMs: 1500, rekeyAfterTimeMs: 600_000, rekeyTimeoutMs: 300 } });
      try {
        const [n0, n1] = mesh2.nodes as [EncryptedMesh['nodes'][0], EncryptedMesh['nodes'][0]];
        const first = await bed2.exec(n0.node.ns, 'ping', ['-c', '1', '-W', '2', n1.address]);
        expect(first.stdout).toMatch(/1 received/);
        const installed = n0.enc.device.counters.sessions_installed;
        const staged = n0.dp.counters().outbound_wg_staged!;
        await new Promise((r) => setTimeout(r, 1600)); // let the session age past the limit (the thing under test is time)
        const again = await bed2.exec(n0.node.ns, 'ping', ['-c', '1', '-W', '3', n1.address]);
        expect(again.stdout).toMatch(/1 received/);
        expect(n0.dp.counters().outbound_wg_staged! - staged).toBeGreaterThanOrEqual(1n);
        expect(n0.enc.device.counters.sessions_installed).toBeGreaterThan(installed);
      } finally {
        mesh2.stop();
      }
    } finally {
      await bed2.teardown();
    }
  });
});
