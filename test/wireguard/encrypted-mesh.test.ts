/**
 * Three tulle nodes in encrypted mode, full mesh: every pair talks, and a capture on the
 * underlay shows WireGuard messages only — never the plaintext of a known payload.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createBed, stopProcess, type Bed } from '../bed/bed.js';
import { startEncryptedMesh, type EncryptedMesh } from '../bed/encrypted-mesh.js';
import { readPcap } from '../bed/pcap.js';
import { waitForOutput } from '../bed/proc.js';

const MARKER_HEX = Buffer.from('TULLE-SECRET-PAYLOAD!').toString('hex'); // ping -p takes up to 16 bytes
const PATTERN = MARKER_HEX.slice(0, 32);

describe('encrypted full mesh of three tulle nodes', () => {
  let bed: Bed;
  let mesh: EncryptedMesh;
  let dir: string;
  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'tulle-encmesh-'));
    bed = await createBed({ nodes: 3, tag: 'wgm' });
    mesh = await startEncryptedMesh(bed);
  });
  afterAll(async () => {
    mesh?.stop();
    await bed?.teardown();
    rmSync(dir, { recursive: true, force: true });
  });

  it('every node reaches every other, and the underlay carries no plaintext', async () => {
    const file = path.join(dir, 'underlay.pcap');
    const capture = bed.spawn(bed.underlayNs, 'tcpdump', ['-i', 'br0', '-n', '-U', '--immediate-mode', '-s', '0', '-w', file, 'udp']);
    await waitForOutput(capture, /listening on/);
    for (const m of mesh.nodes)
      for (const o of mesh.nodes) {
        if (o === m) continue;
        const { stdout } = await bed.exec(m.node.ns, 'ping', ['-c', '2', '-i', '0.2', '-W', '3', '-p', PATTERN, '-s', '200', o.address]);
        expect(stdout, `${m.address} → ${o.address}`).toMatch(/2 received/);
      }
    await stopProcess(capture);
    const packets = readPcap(file);
    const needle = Buffer.from(PATTERN, 'hex');
    expect(packets.length).toBeGreaterThanOrEqual(6 * 4);
    for (const p of packets) expect(Buffer.from(p).includes(needle)).toBe(false);
    // and every UDP payload on the wire is a WireGuard message (type 1..4, three zero bytes)
    for (const frame of packets) {
      const ip = Buffer.from(frame).subarray(14); // br0 captures Ethernet frames
      expect(ip[0]! >> 4).toBe(4);
      const udp = ip.subarray((ip[0]! & 0x0f) * 4 + 8);
      expect(udp[0]).toBeGreaterThanOrEqual(1);
      expect(udp[0]).toBeLessThanOrEqual(4);
      expect(udp.readUIntLE(1, 3)).toBe(0);
    }
    for (const m of mesh.nodes) {
      const c = m.enc.dataPlane.counters();
      expect(c.inbound_drop_decrypt).toBe(0n);
      expect(c.inbound_drop_replay).toBe(0n);
      expect(c.inbound_drop_cryptokey_routing).toBe(0n);
      expect(c.inbound_delivered_packets).toBeGreaterThanOrEqual(8n);
    }
  });
});
