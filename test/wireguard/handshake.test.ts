import { describe, expect, it } from 'vitest';
import { randomBytes } from 'node:crypto';
import { identity, createInitiation, consumeInitiation, createResponse, consumeResponse, INITIAL_CHAIN_KEY, INITIAL_HASH } from '../../src/wireguard/noise.js';
import { CookieChecker, MacSigner } from '../../src/wireguard/cookie.js';
import { generateKeyPair } from '../../src/wireguard/primitives.js';
import { messageKind } from '../../src/wireguard/messages.js';
import { openTransport, sealTransport } from '../../src/wireguard/transport-reference.js';
import { tai64n, tai64nAfter } from '../../src/wireguard/tai64n.js';

const a = identity(generateKeyPair().privateKey);
const b = identity(generateKeyPair().privateKey);

function handshake(psk?: Uint8Array, pskResponder = psk) {
  const { message, state } = createInitiation(a, b.publicKey, 0x11223344, 1_700_000_000_000);
  const got = consumeInitiation(b, message);
  if (!got) throw new Error('initiation rejected');
  const resp = createResponse(got, pskResponder, 0x55667788);
  const keysA = consumeResponse(a, state, psk, resp.message);
  return { message, got, resp, keysA, keysB: resp.keys };
}

describe('Noise IKpsk2 handshake', () => {
  it('starts from the known initial chaining key and hash (as published in boringtun\'s noise/handshake.rs)', () => {
    // HASH("Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s") and HASH(that || "WireGuard v1 zx2c4 Jason@zx2c4.com")
    expect(Array.from(INITIAL_CHAIN_KEY)).toEqual([
      96, 226, 109, 174, 243, 39, 239, 192, 46, 195, 53, 226, 160, 37, 210, 208, 22, 235, 66, 6, 248, 114, 119, 245, 45, 56,
      209, 152, 139, 120, 205, 54,
    ]);
    expect(Array.from(INITIAL_HASH)).toEqual([
      34, 17, 179, 97, 8, 26, 197, 102, 105, 18, 67, 219, 69, 138, 213, 50, 45, 156, 108, 102, 34, 147, 232, 183, 14, 225,
      156, 101, 186, 7, 158, 243,
    ]);
  });

  it('has the wire sizes and kinds of the spec', () => {
    const { message, resp } = handshake();
    expect(message.length).toBe(148);
    expect(resp.message.length).toBe(92);
    expect(messageKind(message)).toBe('initiation');
    expect(messageKind(resp.message)).toBe('response');
    expect(messageKind(message.subarray(0, 147))).toBeUndefined();
  });

  it('derives mirrored transport keys and reveals the initiator static key', () => {
    const { got, keysA, keysB } = handshake();
    expect(Buffer.from(got.peerPublicKey)).toEqual(Buffer.from(a.publicKey));
    expect(keysA).toBeDefined();
    expect(Buffer.from(keysA!.sendKey)).toEqual(Buffer.from(keysB.receiveKey));
    expect(Buffer.from(keysA!.receiveKey)).toEqual(Buffer.from(keysB.sendKey));
    expect(Buffer.from(keysA!.sendKey)).not.toEqual(Buffer.from(keysA!.receiveKey));
    expect(keysA!.remoteIndex).toBe(0x55667788);
    expect(keysB.remoteIndex).toBe(0x11223344);
    const m = sealTransport(keysA!.sendKey, keysA!.remoteIndex, 7n, Uint8Array.of(0x45, 1, 2));
    expect(m.length).toBe(16 + 16 + 16);
    const o = openTransport(keysB.receiveKey, m);
    expect(o?.counter).toBe(7n);
    expect(Array.from(o!.plaintext.subarray(0, 3))).toEqual([0x45, 1, 2]);
  });

  it('uses the PSK: the same PSK agrees, a different one fails the response', () => {
    const psk = randomBytes(32);
    expect(handshake(psk).keysA).toBeDefined();
    expect(handshake(psk, randomBytes(32)).keysA).toBeUndefined();
    expect(handshake(undefined, psk).keysA).toBeUndefined();
  });

  it('rejects an initiation to the wrong responder and any flipped bit', () => {
    const { message } = createInitiation(a, b.publicKey, 1, Date.now());
    const c = identity(generateKeyPair().privateKey);
    expect(consumeInitiation(c, message)).toBeUndefined();
    for (const at of [4 + 0, 8 + 5, 40 + 3, 88 + 20]) {
      const bad = Uint8Array.from(message);
      bad[at]! ^= 0x01;
      const got = consumeInitiation(b, bad);
      // flipping the sender index changes nothing authenticated; everything else must fail
      if (at < 8) expect(got?.remoteIndex).toBe(1 ^ 1);
      else expect(got).toBeUndefined();
    }
  });

  it('rejects a response for another index or with a flipped bit', () => {
    const { state, message } = createInitiation(a, b.publicKey, 9, Date.now());
    const resp = createResponse(consumeInitiation(b, message)!, undefined, 10);
    const bad = Uint8Array.from(resp.message);
    bad[50]! ^= 0x80;
    expect(consumeResponse(a, state, undefined, bad)).toBeUndefined();
    expect(consumeResponse(a, { ...state, localIndex: 8 }, undefined, resp.message)).toBeUndefined();
  });

  it('TAI64N timestamps grow with time and are whitened below 2^24 ns', () => {
    const t1 = tai64n(1_700_000_000_000);
    const t2 = tai64n(1_700_000_000_100);
    expect(tai64nAfter(t2, t1)).toBe(true);
    expect(tai64nAfter(t1, t2)).toBe(false);
    expect(tai64nAfter(t1, t1)).toBe(false);
    expect(Buffer.from(t1.subarray(0, 8)).readBigUInt64BE()).toBe(0x400000000000000an + 1_700_000_000n);
    expect(Buffer.from(t1.subarray(8)).readUInt32BE() & 0xffffff).toBe(0);
  });
});

describe('mac1, mac2 and cookies', () => {
  const src = Uint8Array.of(198, 18, 0, 10, 0xca, 0x6c);

  it('mac1 is always required and checked', () => {
    const checker = new CookieChecker(b, 0);
    const { message } = createInitiation(a, b.publicKey, 1, 0);
    expect(checker.check(message, src, false, 0)).toBe('bad-mac1');
    new MacSigner(b.publicKey).sign(message, 0);
    expect(checker.check(message, src, false, 0)).toBe('ok');
    message[10]! ^= 1;
    expect(checker.check(message, src, false, 0)).toBe('bad-mac1');
  });

  it('under load: no mac2 → cookie reply; the reply gives a mac2 that passes from that source only', () => {
    const checker = new CookieChecker(b, 0);
    const signer = new MacSigner(b.publicKey);
    const { message } = createInitiation(a, b.publicKey, 0xabcdef, 0);
    signer.sign(message, 1000);
    expect(checker.check(message, src, true, 1000)).toBe('need-cookie');
    const reply = checker.reply(message, src, 1000);
    expect(reply.length).toBe(64);
    expect(messageKind(reply)).toBe('cookie-reply');
    expect(Buffer.from(reply).readUInt32LE(4)).toBe(0xabcdef);
    const forged = Uint8Array.from(reply);
    forged[40]! ^= 1;
    expect(signer.consumeReply(forged, 1000)).toBe(false);
    expect(signer.consumeReply(reply, 1000)).toBe(true);
    signer.sign(message, 1001);
    expect(checker.check(message, src, true, 1001)).toBe('ok');
    expect(checker.check(message, Uint8Array.of(198, 18, 0, 66, 0, 1), true, 1001)).toBe('bad-mac2');
    // the secret rotates after two minutes: the old cookie no longer passes
    expect(checker.check(message, src, true, 1001 + 120_000)).toBe('bad-mac2');
    // and the signer stops using a stale cookie
    signer.sign(message, 1001 + 120_000);
    expect(checker.check(message, src, true, 1002 + 120_000)).toBe('need-cookie');
  });
});

describe('HandshakeGate', () => {
  const src = Uint8Array.of(198, 18, 0, 10, 0xca, 0x6c);
  it('checks mac1 only until under load, then rate-limits per source before any MAC', async () => {
    const { HandshakeGate } = await import('../../src/wireguard/handshake-gate.js');
    const gate = new HandshakeGate(b, 0);
    const signer = new MacSigner(b.publicKey);
    const { message } = createInitiation(a, b.publicKey, 1, 0);
    signer.sign(message, 0);
    expect(gate.admit(message, '198.18.0.10', src, 0)).toEqual({ pass: true });
    expect(gate.observePending(63, 0)).toBe(false);
    expect(gate.observePending(64, 0)).toBe(true);
    const verdicts = Array.from({ length: 10 }, () => gate.admit(message, '198.18.0.10', src, 1));
    expect(verdicts.filter((v) => !v.pass && v.reason === 'cookie').length).toBe(5); // burst of the cookie limiter
    expect(verdicts.filter((v) => !v.pass && v.reason === 'rate-limited').length).toBe(5);
    const reply = (verdicts[0] as { reply: Uint8Array }).reply;
    expect(signer.consumeReply(reply, 2)).toBe(true);
    signer.sign(message, 2);
    expect(gate.admit(message, '198.18.0.10', src, 2)).toEqual({ pass: true });
    // the load lasts a second after the last crowded drain
    expect(gate.underLoad(999)).toBe(true);
    expect(gate.underLoad(1000)).toBe(false);
  });
});
