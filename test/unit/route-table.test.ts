// The native route table against the TypeScript reference, on random tables and addresses.
import { describe, expect, it } from 'vitest';
import { loadAddon } from '../../src/dataplane/native.js';
import { encodeCommands, type Command } from '../../src/dataplane/commands.js';
import { ReferenceRouter } from '../../src/dataplane/route-reference.js';
import { formatPrefix, parsePrefix, type Address, type Prefix } from '../../src/util/ip.js';
import { seededRandom } from './seeded-random.js';


function randomAddress(r: () => number, family: 4 | 6, near?: Prefix): Address {
  const bytes = Uint8Array.from({ length: family === 4 ? 4 : 16 }, () => Math.floor(r() * 256));
  // half the queries land inside a known prefix so hits are exercised, not only misses
  if (near && near.family === family && r() < 0.5) {
    for (let i = 0; i < bytes.length; i++) {
      const bits = near.len - i * 8;
      if (bits <= 0) break;
      const keep = bits >= 8 ? 0xff : (0xff << (8 - bits)) & 0xff;
      bytes[i] = (near.bytes[i]! & keep) | (bytes[i]! & ~keep & 0xff);
    }
  }
  return { family, bytes };
}

describe('native route table', () => {
  const addon = loadAddon();

  for (const seed of [1, 2, 3, 4, 5, 6, 7, 8]) {
    it(`matches the reference on random tables (seed ${seed})`, () => {
      const r = seededRandom(seed);
      const ref = new ReferenceRouter();
      const cmds: Command[] = [];
      const prefixes: Prefix[] = [];
      // a flannel-like table: one or two prefix lengths per family, with churn
      const lens4 = [24, Math.floor(r() * 33)];
      const lens6 = [64, Math.floor(r() * 129)];
      for (let i = 0; i < 600; i++) {
        const family = r() < 0.7 ? 4 : 6;
        const lens = family === 4 ? lens4 : lens6;
        const len = lens[r() < 0.8 ? 0 : 1]!;
        const prefix = { ...randomAddress(r, family, prefixes[Math.floor(r() * prefixes.length)]), len };
        if (prefixes.length && r() < 0.25) {
          const victim = prefixes.splice(Math.floor(r() * prefixes.length), 1)[0]!;
          cmds.push({ op: 'deleteRoute', subnet: formatPrefix(victim) });
          ref.delete(victim);
        } else {
          const peer = Math.floor(r() * 1000);
          cmds.push({ op: 'setRoute', subnet: formatPrefix(prefix), peer });
          ref.set(prefix, peer);
          prefixes.push(prefix);
        }
      }
      const queries: Address[] = [];
      for (let i = 0; i < 1500; i++) {
        const near = prefixes[Math.floor(r() * prefixes.length)];
        queries.push(randomAddress(r, r() < 0.7 ? 4 : 6, near));
      }
      const q = new Uint8Array(queries.length * 17);
      queries.forEach((a, i) => {
        q[i * 17] = a.family;
        q.set(a.bytes, i * 17 + 1);
      });
      const got = addon.routeLookup(encodeCommands(cmds), q);
      const want = queries.map((a) => ref.lookup(a) ?? 0xffffffff);
      expect(Array.from(got)).toEqual(want);
      expect(want.filter((p) => p !== 0xffffffff).length).toBeGreaterThan(100);
    });
  }

  it('rejects a malformed command batch and applies nothing', () => {
    const good = encodeCommands([{ op: 'setRoute', subnet: '10.244.1.0/24', peer: 1 }]);
    const bad = new Uint8Array([...good, 9, 0, 4, 0]);
    expect(() => addon.routeLookup(bad, new Uint8Array(17))).toThrow(/invalid data plane command at byte 28/);
  });

  it('parses prefixes it formats', () => {
    for (const p of ['10.244.0.0/16', 'fd00:1:2::/48', '::/0', '255.255.255.255/32']) expect(formatPrefix(parsePrefix(p))).toBe(p);
  });
});
