/**
 * Encrypted mode runs the offload loop too: segments are sealed between split and grouping and
 * opened before coalescing (wg_seal_parts / wg_open_datagram), so the offloads stay as the kernel
 * accepts them. Inbound steering by inner flow needs a readable inner header, so with several
 * queues encrypted mode keeps the kernel's hash instead. (That nothing leaves in clear text is
 * shown by the underlay captures in test/wireguard/encrypted-mesh.test.ts and daemon.test.ts.)
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startDataPlane } from '../../src/dataplane/dataplane.js';
import { createBed, type Bed } from '../bed/bed.js';

let bed: Bed;
beforeAll(async () => {
  bed = await createBed({ nodes: 1, tag: 'oe' });
});
afterAll(async () => bed?.teardown());

it('keeps the offloads in encrypted mode, without inner-flow steering', () => {
  const node = bed.nodes[0]!;
  const plain = startDataPlane({ netns: node.nsPath, bindAddress: node.underlayIp, port: 0, mtu: 1420, tunName: 'op0', queues: 2 });
  const accepted = plain.offload;
  plain.stop();
  const dp = startDataPlane({ netns: node.nsPath, bindAddress: node.underlayIp, port: 0, mtu: 1420, tunName: 'oe0', encrypted: true, queues: 2 });
  try {
    expect(dp.offload).toMatchObject({ ...accepted, reuseportInnerFlow: false });
  } finally {
    dp.stop();
  }
  const off = startDataPlane({ netns: node.nsPath, bindAddress: node.underlayIp, port: 0, mtu: 1420, tunName: 'oe1', encrypted: true, offload: false });
  try {
    expect(off.offload).toMatchObject({ enabled: false, vnetHeader: false });
  } finally {
    off.stop();
  }
});
