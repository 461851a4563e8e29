/**
 * The native AEAD (both of its paths: node's OpenSSL primitives directly, and EVP) and replay
 * window against the TypeScript references (@noble/ciphers, ReplayWindow) on random keys,
 * counters and lengths.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { randomBytes, randomInt } from 'node:crypto';
import { loadAddon } from '../../src/dataplane/native.js';
import { aeadOpen, aeadSeal } from '../../src/wireguard/primitives.js';
import { ReplayWindow } from '../../src/wireguard/replay-window.js';

const addon = loadAddon();
const empty = new Uint8Array(0);

function randomCounter(): bigint {
  switch (randomInt(3)) {
    case 0: return BigInt(randomInt(1000));
    case 1: return randomBytes(8).readBigUInt64LE();
    default: return 2n ** 64n - 1n - BigInt(randomInt(1000));
  }
}

const defaultPath = addon.aeadPath();
afterAll(() => {
  addon.aeadPath(defaultPath);
});

describe('native AEAD path', () => {
  it('is the direct one by default in this node (its OpenSSL exports the primitives), and EVP on request', () => {
    expect(defaultPath).toBe('direct');
    expect(addon.aeadPath('evp')).toBe('evp');
    expect(addon.aeadPath('direct')).toBe('direct');
    expect(() => addon.aeadPath('fast' as 'evp')).toThrow(/aeadPath/);
  });
});

describe.each(['direct', 'evp'] as const)('native ChaCha20-Poly1305 (%s) vs @noble/ciphers', (path) => {
  it('seals identically and opens what noble sealed (random keys, counters, lengths)', () => {
    addon.aeadPath(path);
    for (let i = 0; i < 300; i++) {
      const key = randomBytes(32);
      const counter = randomCounter();
      const len = i < 20 ? i : randomInt(i % 5 === 0 ? 9000 : 1500);
      const pt = randomBytes(len);
      const ref = aeadSeal(key, counter, pt, empty);
      const got = addon.aeadSeal(key, counter, pt);
      expect(Buffer.from(got!)).toEqual(Buffer.from(ref));
      expect(Buffer.from(addon.aeadOpen(key, counter, ref)!)).toEqual(pt);
    }
  });

  it('seals a plaintext given in three pieces (offloaded segments) exactly as in one', () => {
    addon.aeadPath(path);
    for (let i = 0; i < 200; i++) {
      const key = randomBytes(32);
      const counter = randomCounter();
      const pt = randomBytes(randomInt(0, i % 4 === 0 ? 9000 : 3000)); // past one keystream call (4032 bytes)
      const a = randomInt(0, pt.length + 1);
      const b = randomInt(a, pt.length + 1);
      const got = addon.aeadSealParts(key, counter, pt.subarray(0, a), pt.subarray(a, b), pt.subarray(b));
      expect(Buffer.from(got)).toEqual(Buffer.from(aeadSeal(key, counter, pt, empty)));
    }
  });

  it('rejects a flipped bit, a wrong counter or a wrong key', () => {
    addon.aeadPath(path);
    for (let i = 0; i < 100; i++) {
      const key = randomBytes(32);
      const counter = randomCounter();
      const ct = aeadSeal(key, counter, randomBytes(randomInt(1, 200)), empty);
      const bad = Uint8Array.from(ct);
      bad[randomInt(bad.length)]! ^= 1 << randomInt(8);
      expect(addon.aeadOpen(key, counter, bad)).toBeNull();
      expect(addon.aeadOpen(key, counter ^ 1n, ct)).toBeNull();
      expect(addon.aeadOpen(randomBytes(32), counter, ct)).toBeNull();
      expect(aeadOpen(key, counter, bad, empty)).toBeUndefined();
    }
  });
});

describe('native replay window vs ReplayWindow', () => {
  it('agrees on random sequences (in order, reordered, replayed, far jumps, limits)', () => {
    for (let round = 0; round < 20; round++) {
      const seq: bigint[] = [];
      let base = round % 4 === 3 ? 2n ** 64n - 2n ** 13n - 20_000n : 0n;
      for (let i = 0; i < 5000; i++) {
        const r = randomInt(100);
        if (r < 50) base += BigInt(randomInt(3));
        else if (r < 55) base += BigInt(randomInt(20_000));
        const back = r >= 80 ? BigInt(randomInt(9000)) : 0n;
        seq.push(base > back ? base - back : 0n);
      }
      const ref = new ReplayWindow();
      const want = seq.map((c) => (ref.accept(c) ? 1 : 0));
      const got = addon.replayCheck(BigUint64Array.from(seq));
      expect(Array.from(got)).toEqual(want);
    }
  });
});
