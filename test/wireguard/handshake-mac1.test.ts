/**
 * Handshake messages are checked in C before they take a place in the event ring (issue 8,
 * item 4, point 7): an initiation or response whose mac1 is not keyed with our public key, and a
 * cookie reply from an address that is no peer's, are dropped by name. Valid handshakes (mac1
 * made by the TypeScript implementation) still pass: the mesh completes them and rekeys.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { blake2s } from '@noble/hashes/blake2.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBed, type Bed, type BedNode } from '../bed/bed.js';
import { startEncryptedMesh, type EncryptedMesh } from '../bed/encrypted-mesh.js';
import { pollUntil } from '../bed/proc.js';
import { sendTrains } from '../bed/trains.js';
import { loadAddon } from '../../src/dataplane/native.js';
import { mac } from '../../src/wireguard/primitives.js';
import { peerKeys } from '../../src/wireguard/noise.js';
import { seededRandom } from '../unit/seeded-random.js';

describe('native BLAKE2s', () => {
  it('matches RFC 7693 and @noble/hashes, keyed and not, on random inputs', () => {
    const addon = loadAddon();
    // RFC 7693 appendix B: BLAKE2s-256("abc")
    expect(Buffer.from(addon.blake2s(new Uint8Array(0), Buffer.from('abc'), 32)).toString('hex')).toBe(
      '508c5e8c327c14e2e1a72ba34eeb452f37458b209ed63a294d999b4c86675982',
    );
    const rnd = seededRandom(8);
    for (let i = 0; i < 2000; i++) {
      const key = randomBytes(Math.floor(rnd() * 33));
      const data = randomBytes(Math.floor(rnd() * 300)); // 0..299: empty, partial, exact and many blocks
      const outLen = 1 + Math.floor(rnd() * 32);
      const want = blake2s(data, { key: key.length ? key : undefined, dkLen: outLen });
      expect(Buffer.from(addon.blake2s(key, data, outLen)).toString('hex')).toBe(Buffer.from(want).toString('hex'));
    }
    // WireGuard's mac1: MAC(HASH("mac1----" || public key), message up to mac1)
    const pub = randomBytes(32), msg = randomBytes(116);
    expect(Buffer.from(addon.blake2s(peerKeys(pub).mac1Key, msg, 16))).toEqual(Buffer.from(mac(peerKeys(pub).mac1Key, msg)));
  });
});

describe('handshake messages from strangers', () => {
  let bed: Bed;
  let mesh: EncryptedMesh;
  let attacker: BedNode;
  let dir: string;
  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'tulle-mac1-'));
    bed = await createBed({ nodes: 2, tag: 'm1' });
    attacker = await bed.addHost('atk', 66);
    mesh = await startEncryptedMesh(bed); // completes a handshake between the two: valid mac1s pass
  });
  afterAll(async () => {
    mesh?.stop();
    await bed?.teardown();
    rmSync(dir, { recursive: true, force: true });
  });

  it('never reach the event ring without a valid mac1, and handshakes go on', async () => {
    const [a, b] = mesh.nodes as [EncryptedMesh['nodes'][0], EncryptedMesh['nodes'][0]];
    const message = (type: number, len: number) => {
      const m = randomBytes(len);
      m[0] = type;
      m[1] = m[2] = m[3] = 0;
      return m;
    };
    // more than the ring holds (1024): they used to fill it, and real handshakes were dropped
    const initiations = Array.from({ length: 1500 }, () => [message(1, 148)]);
    const responses = Array.from({ length: 300 }, () => [message(2, 92)]);
    // an initiation keyed with someone else's public key
    const wrongKey = message(1, 148);
    wrongKey.set(mac(peerKeys(randomBytes(32)).mac1Key, wrongKey.subarray(0, 116)), 116);
    const cookies = Array.from({ length: 200 }, () => [message(3, 64)]);
    const before = b.dp.counters();
    const devBefore = { ...b.enc.device.counters };
    await sendTrains(bed, attacker, path.join(dir, 'init.bin'), [...initiations, [wrongKey], ...responses], b.node.underlayIp, 51820);
    await sendTrains(bed, attacker, path.join(dir, 'cookie.bin'), cookies, b.node.underlayIp, 51820);
    const want = { mac1: BigInt(initiations.length + 1 + responses.length), cookie: BigInt(cookies.length) };
    const d = (k: string) => b.dp.counters()[k]! - before[k]!;
    await pollUntil(() => (d('inbound_drop_handshake_mac1') >= want.mac1 && d('inbound_drop_cookie_reply_stranger') >= want.cookie ? true : undefined), 'drops counted', 20_000).catch(() => undefined);
    expect({
      mac1: d('inbound_drop_handshake_mac1'),
      cookie: d('inbound_drop_cookie_reply_stranger'),
      queued: d('inbound_wg_handshake_messages'),
      ringFull: d('inbound_drop_handshake_queue_full'),
    }).toEqual({ ...want, queued: 0n, ringFull: 0n });
    expect(b.enc.device.counters).toEqual(devBefore); // TypeScript saw none of it

    // a new handshake between the nodes still completes, and traffic flows on it
    const installed = b.enc.device.counters.sessions_installed;
    a.enc.device.initiate(b.index);
    await pollUntil(() => (b.enc.device.counters.sessions_installed > installed ? true : undefined), 'rekey', 20_000);
    const ping = await bed.exec(a.node.ns, 'ping', ['-c', '3', '-i', '0.1', '-W', '2', b.address]);
    expect(ping.stdout).toMatch(/3 packets transmitted, 3 received/);
  });
});
