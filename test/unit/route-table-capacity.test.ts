/**
 * The native route table at cluster scale (issue 14): 10,000+ routes (leases of a /16 in /30s)
 * all found, and its bound: RT_MAX_ROUTES (2^20) routes fit, one more is refused — the table
 * cannot be grown without limit by a stream of setRoute commands — while routes already in it can
 * still be changed and deleted. Through the addon's routeLookup (the table alone).
 */
import { describe, expect, it } from 'vitest';
import { loadAddon } from '../../src/dataplane/native.js';

const RT_MAX_ROUTES = 2 ** 20;

/** setRoute (op 3) / deleteRoute (op 4) records for IPv4 subnets base + i * 2^(32-len), peer = i % 60,000 + offset (ids stay under DP_MAX_PEERS) */
function routes(count: number, len: number, op = 3, firstIndex = 0, peerOffset = 1): Uint8Array {
  const out = new Uint8Array(count * 28);
  const v = new DataView(out.buffer);
  for (let k = 0; k < count; k++) {
    const i = firstIndex + k;
    const at = k * 28;
    const addr = (0x0a000000 + i * 2 ** (32 - len)) >>> 0;
    out[at] = op;
    v.setUint16(at + 2, 28, true);
    if (op === 3) v.setUint32(at + 4, (i % 60_000) + peerOffset, true);
    out[at + 8] = 4;
    out[at + 9] = len;
    v.setUint32(at + 12, addr, false);
  }
  return out;
}

function queries(indices: number[], len: number, inside = 1): Uint8Array {
  const out = new Uint8Array(indices.length * 17);
  const v = new DataView(out.buffer);
  indices.forEach((i, k) => {
    out[k * 17] = 4;
    v.setUint32(k * 17 + 1, ((0x0a000000 + i * 2 ** (32 - len)) >>> 0) + inside, false); // an address inside
  });
  return out;
}

describe('native route table capacity', () => {
  const addon = loadAddon();

  it('holds 16,384 /30 routes (a /16 network) and finds every one', () => {
    const n = 16_384;
    const got = addon.routeLookup(routes(n, 30), queries(Array.from({ length: n }, (_, i) => i), 30));
    for (let i = 0; i < n; i++) if (got[i] !== i + 1) expect(got[i], `route ${i}`).toBe(i + 1); // (n < 60,000)
  });

  it('refuses the route past RT_MAX_ROUTES, still updates and deletes existing ones', () => {
    const cmds = new Uint8Array((RT_MAX_ROUTES + 1) * 28 + 2 * 28);
    cmds.set(routes(RT_MAX_ROUTES + 1, 32), 0);
    // then: change route 0's peer (allowed at capacity) and delete route 1
    cmds.set(routes(1, 32, 3, 0, 1000), (RT_MAX_ROUTES + 1) * 28);
    cmds.set(routes(1, 32, 4, 1), (RT_MAX_ROUTES + 2) * 28);
    const got = addon.routeLookup(cmds, queries([0, 1, 2, RT_MAX_ROUTES - 1, RT_MAX_ROUTES], 32, 0));
    expect([...got]).toEqual([1000, 0xffffffff, 3, ((RT_MAX_ROUTES - 1) % 60_000) + 1, 0xffffffff]);
  }, 60_000);
});
