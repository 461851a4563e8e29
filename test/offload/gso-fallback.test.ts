/**
 * The kernel refusing UDP_SEGMENT at run time: with an underlay MTU smaller than a segment plus
 * the outer headers, a train fails with EINVAL. The data plane must resend that train datagram
 * by datagram (the kernel fragments them), stop building trains, and lose nothing.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from '../../src/host/exec.js';
import { createBed, type Bed } from '../bed/bed.js';
import { startStaticMesh, type Mesh } from '../bed/mesh.js';
import { tcpTransfer } from './transfer.js';

describe('UDP_SEGMENT refused at run time', () => {
  let bed: Bed;
  let mesh: Mesh;
  beforeAll(async () => {
    bed = await createBed({ nodes: 2, tag: 'gf' });
    for (const n of bed.nodes) await run('ip', ['-n', n.ns, 'link', 'set', 'dev', 'eth0', 'mtu', '1400']);
    mesh = await startStaticMesh(bed); // TUN MTU 1472: segments no longer fit the underlay
  });
  afterAll(async () => {
    mesh?.stop();
    await bed?.teardown();
  });

  it('falls back to one datagram per segment and delivers every byte', async () => {
    const [a, b] = mesh.nodes;
    expect(a!.dp.offload.gso).toBe(true);
    const { sent, received } = await tcpTransfer(bed, a!.node.ns, b!.node.ns, b!.address, 8 << 20, 7006);
    expect(received).toEqual(sent);
    const c = a!.dp.counters();
    expect(c.outbound_gso_fallbacks).toBe(1n); // once: no trains after the first refusal
    expect(c.outbound_udp_sends).toBeGreaterThan(c.outbound_sent_packets! - 64n);
    expect(c.outbound_drop_send_error).toBe(0n);
  });
});
