/**
 * An IPv6 overlay over the IPv4 underlay: TSO6 super-packets are split, and TCPv6 segments are
 * coalesced back into GSO_TCPV6 super-packets the receiving kernel accepts, byte for byte.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from '../../src/host/exec.js';
import { createBed, type Bed } from '../bed/bed.js';
import { startStaticMesh, type Mesh } from '../bed/mesh.js';
import { tcpTransfer } from './transfer.js';

const v6Address = (i: number) => `fd00:244:${i}::1`;

describe('IPv6 overlay with offloads', () => {
  let bed: Bed;
  let mesh: Mesh;
  beforeAll(async () => {
    bed = await createBed({ nodes: 2, tag: 'o6' });
    mesh = await startStaticMesh(bed);
    for (const m of mesh.nodes) {
      await run('ip', ['-n', m.node.ns, '-6', 'addr', 'add', `${v6Address(m.index)}/128`, 'dev', m.dp.tunName, 'nodad']);
      await run('ip', ['-n', m.node.ns, '-6', 'route', 'replace', 'fd00:244::/32', 'dev', m.dp.tunName]);
      m.dp.apply(mesh.nodes.filter((o) => o !== m).map((o) => ({ op: 'setRoute' as const, subnet: `fd00:244:${o.index}::/48`, peer: o.index })));
    }
  });
  afterAll(async () => {
    mesh?.stop();
    await bed?.teardown();
  });

  it('carries an exact TCP transfer both ways, split and coalesced', async () => {
    const [a, b] = mesh.nodes;
    for (const [from, to] of [[a!, b!], [b!, a!]] as const) {
      const before = [from.dp.counters(), to.dp.counters()] as const;
      const { sent, received } = await tcpTransfer(bed, from.node.ns, to.node.ns, v6Address(to.index), 32 << 20, 7005);
      expect(received).toEqual(sent);
      const after = [from.dp.counters(), to.dp.counters()] as const;
      expect(after[0].outbound_gso_splits! - before[0].outbound_gso_splits!).toBeGreaterThan(0n);
      expect(after[1].inbound_coalesced! - before[1].inbound_coalesced!).toBeGreaterThan(0n);
      expect(after[1].inbound_drop_spoofed_source).toBe(0n);
    }
  });
});
