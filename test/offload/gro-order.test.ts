/**
 * Found with the per-flow order check of the `inbound` fuzz harness (native/fuzz/), on an input
 * written after reading classify(), then kept in its regression corpus: a packet of a TCP flow
 * that carries IPv4 options is never coalesced, and it used to be invisible to the flow table, so
 * the next segment of the flow was merged into the packet before it and written to the TUN ahead
 * of it. The coalescer must keep the order within a flow, whatever it merges.
 */
import { describe, expect, it } from 'vitest';
import { loadAddon } from '../../src/dataplane/native.js';
import { decodeVnet, fold, onesSum, put16, referenceCoalesce, referenceSplit } from '../../src/dataplane/offload-reference.js';
import { buildPacket, hex, randomBytes, randomFlow } from './packets.js';
import { seededRandom } from '../unit/seeded-random.js';

/** The same IPv4 packet with 4 bytes of options (NOPs): TCP and its checksum unchanged. */
function withIpOptions(p: Uint8Array): Uint8Array {
  const o = new Uint8Array(p.length + 4);
  o.set(p.subarray(0, 20));
  o.set([1, 1, 1, 1], 20);
  o.set(p.subarray(20), 24);
  o[0] = 0x46;
  put16(o, 2, o.length);
  put16(o, 10, 0);
  put16(o, 10, ~fold(onesSum(o, 0, 24)) & 0xffff);
  return o;
}

describe('coalescing keeps the order within a flow', () => {
  const addon = loadAddon();
  it('a segment is not merged ahead of an earlier packet of its flow with IPv4 options', () => {
    const rand = seededRandom(0x0de7);
    for (let n = 0; n < 20; n++) {
      const f = randomFlow(rand, 4, 6);
      f.options = new Uint8Array(0);
      const a = buildPacket(f, randomBytes(rand, 100), 0x10, 'full');
      f.seq = (f.seq + 100) >>> 0;
      const x = withIpOptions(buildPacket(f, randomBytes(rand, 100), 0x10, 'full'));
      const b = buildPacket(f, randomBytes(rand, 100), 0x10, 'full'); // continues a's sequence
      const got = addon.offloadCoalesce([a, x, b].map((p) => p.slice()), true, true);
      expect(got.map((o) => o.segments)).toEqual([1, 1, 1]);
      // as the kernel takes them: a NEEDS_CSUM single's checksum completed
      const kernel = (o: { vnet: Uint8Array; packet: Uint8Array }) => hex(referenceSplit(decodeVnet(o.vnet), o.packet)![0]!);
      expect(got.map(kernel)).toEqual([a, x, b].map(hex));
      expect(referenceCoalesce([a, x, b], { tcp: true, udp: true }).map(kernel)).toEqual([a, x, b].map(hex));
    }
  });

  it('still merges a flow whose packets carry no options', () => {
    const rand = seededRandom(0x0de8);
    const f = randomFlow(rand, 4, 6);
    const a = buildPacket(f, randomBytes(rand, 100), 0x10, 'full');
    f.seq = (f.seq + 100) >>> 0;
    const b = buildPacket(f, randomBytes(rand, 100), 0x10, 'full');
    expect(addon.offloadCoalesce([a, b], true, true).map((o) => o.segments)).toEqual([2]);
  });
});
