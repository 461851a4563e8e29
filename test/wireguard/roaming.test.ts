/**
 * Roaming: an authenticated data packet from a new address moves the peer's endpoint, and the
 * answers follow it. Node 0's outer source port is rewritten by SNAT in its own namespace (as a
 * NAT rebinding would), so node 1 sees node 0 arrive from a new port.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBed, type Bed } from '../bed/bed.js';
import { startEncryptedMesh, type EncryptedMesh } from '../bed/encrypted-mesh.js';
import { readPcap } from '../bed/pcap.js';
import { pollUntil, waitForOutput } from '../bed/proc.js';
import { stopProcess } from '../bed/bed.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

describe('roaming', () => {
  let bed: Bed;
  let mesh: EncryptedMesh;
  let dir: string;
  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'tulle-roam-'));
    bed = await createBed({ nodes: 2, tag: 'wgr' });
    mesh = await startEncryptedMesh(bed);
  });
  afterAll(async () => {
    mesh?.stop();
    await bed?.teardown();
    rmSync(dir, { recursive: true, force: true });
  });

  it('follows a peer to a new address after an authenticated packet from it', async () => {
    const [n0, n1] = mesh.nodes as [EncryptedMesh['nodes'][0], EncryptedMesh['nodes'][0]];
    const first = await bed.exec(n0.node.ns, 'ping', ['-c', '1', '-W', '2', n1.address]);
    expect(first.stdout).toMatch(/1 received/);
    await bed.exec(n0.node.ns, 'iptables', ['-t', 'nat', '-A', 'POSTROUTING', '-p', 'udp', '--sport', '51820', '-j', 'SNAT', '--to-source', `${n0.node.underlayIp}:40000`]);
    const file = path.join(dir, 'ul.pcap');
    const cap = bed.spawn(bed.underlayNs, 'tcpdump', ['-i', 'br0', '-n', '-U', '--immediate-mode', '-w', file, 'udp']);
    await waitForOutput(cap, /listening on/);
    const before = n1.enc.dataPlane.counters();
    const out = await bed.exec(n0.node.ns, 'ping', ['-c', '3', '-i', '0.2', '-W', '2', n1.address]);
    await stopProcess(cap);
    expect(out.stdout).toMatch(/3 received/);
    const after = n1.enc.dataPlane.counters();
    expect(after.inbound_wg_roamed! - before.inbound_wg_roamed!).toBe(1n);
    // node 1 now answers to the new port
    const ports = readPcap(file).map((f) => {
      const ip = Buffer.from(f).subarray(14);
      const udp = ip.subarray((ip[0]! & 0x0f) * 4);
      return { src: ip.subarray(12, 16).join('.'), sport: udp.readUInt16BE(0), dport: udp.readUInt16BE(2) };
    });
    expect(ports.some((p) => p.src === n1.node.underlayIp && p.dport === 40000)).toBe(true);
    // and node 1's handshake driver follows: its next initiation goes to the new port too
    await pollUntil(() => (n1.enc.device.endpointOf(0)?.port === 40000 ? true : undefined), 'device endpoint follows roaming');
    expect(n1.dp.peerEndpoint(0)).toEqual({ address: n0.node.underlayIp, port: 40000 });
  });
});
