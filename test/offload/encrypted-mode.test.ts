/**
 * The offload loop has no WireGuard seal/open yet: encrypted mode must run the plain loop (which
 * encrypts), whatever offloads were asked for, so nothing can leave in clear text.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startDataPlane } from '../../src/dataplane/dataplane.js';
import { createBed, type Bed } from '../bed/bed.js';

let bed: Bed;
beforeAll(async () => {
  bed = await createBed({ nodes: 1, tag: 'oe' });
});
afterAll(async () => bed?.teardown());

it('turns every offload off in encrypted mode', () => {
  const node = bed.nodes[0]!;
  for (const offload of [undefined, true, { tso: true }]) {
    const dp = startDataPlane({ netns: node.nsPath, bindAddress: node.underlayIp, port: 0, mtu: 1420, tunName: 'oe0', encrypted: true, offload });
    try {
      expect(dp.offload).toMatchObject({ enabled: false, vnetHeader: false, tso: false, gso: false, gro: false });
    } finally {
      dp.stop();
    }
  }
});
