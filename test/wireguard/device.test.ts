/**
 * The handshake device against a fake data plane and a fake clock: two devices wired through
 * their sendRaw, so every handshake runs through the real message handling.
 */
import { describe, expect, it } from 'vitest';
import { WireGuardDevice, type WireGuardDataPlane } from '../../src/wireguard/device.js';
import { EVENT_RECORD_BYTES } from '../../src/wireguard/events.js';
import { generateKeyPair } from '../../src/wireguard/primitives.js';
import type { Command } from '../../src/dataplane/commands.js';
import { formatAddress, parseAddress } from '../../src/util/ip.js';

const clock = { now: 1_000_000 };
/** the wall clock behind TAI64N timestamps, apart from the monotonic one */
const wall = { skewMs: 1_700_000_000_000 };

class FakeDataPlane implements WireGuardDataPlane {
  commands: Command[] = [];
  sent: Array<{ address: string; port: number; bytes: Uint8Array }> = [];
  queue: Uint8Array[] = [];
  activity = new Map<number, number[]>();
  deliver: ((from: string, bytes: Uint8Array) => void) | undefined;
  constructor(readonly address: string) {}
  apply(c: readonly Command[]) {
    this.commands.push(...c);
  }
  drainEvents() {
    if (!this.queue.length) return null;
    const out = new Uint8Array(this.queue.length * EVENT_RECORD_BYTES);
    this.queue.forEach((r, i) => out.set(r, i * EVENT_RECORD_BYTES));
    this.queue = [];
    return out;
  }
  sendRaw(address: string, port: number, bytes: Uint8Array) {
    this.sent.push({ address, port, bytes });
    this.deliver?.(this.address, bytes);
    return true;
  }
  peerActivity(ids: Uint32Array) {
    return Float64Array.from([...ids].flatMap((id) => this.activity.get(id) ?? [0, 0, 0, 0, 0]));
  }
  endpoints = new Map<number, { address: string; port: number }>();
  peerEndpoint(id: number) {
    return this.endpoints.get(id);
  }
  monotonicMs() {
    return clock.now;
  }
  /** queue a handshake message as the native side would */
  push(from: string, port: number, msg: Uint8Array) {
    const r = new Uint8Array(EVENT_RECORD_BYTES);
    r[0] = 1;
    r[1] = 4;
    new DataView(r.buffer).setUint16(2, port, true);
    r.set(from.split('.').map(Number), 8);
    new DataView(r.buffer).setUint16(24, msg.length, true);
    r.set(msg, 28);
    this.queue.push(r);
  }
  pushNeed(peer: number) {
    const r = new Uint8Array(EVENT_RECORD_BYTES);
    r[0] = 2;
    new DataView(r.buffer).setUint32(4, peer, true);
    this.queue.push(r);
  }
  installs() {
    return this.commands.filter((c): c is Extract<Command, { op: 'installSession' }> => c.op === 'installSession');
  }
}

function pair() {
  const ka = generateKeyPair();
  const kb = generateKeyPair();
  const dpa = new FakeDataPlane('198.18.0.10');
  const dpb = new FakeDataPlane('198.18.0.11');
  const A = new WireGuardDevice({ privateKey: ka.privateKey, dataPlane: dpa, random: () => 0, wallClockMs: () => clock.now + wall.skewMs });
  const B = new WireGuardDevice({ privateKey: kb.privateKey, dataPlane: dpb, random: () => 0, wallClockMs: () => clock.now + wall.skewMs });
  A.addPeer({ id: 1, publicKey: kb.publicKey, endpoint: { address: '198.18.0.11', port: 51820 } });
  B.addPeer({ id: 7, publicKey: ka.publicKey, endpoint: { address: '198.18.0.10', port: 51820 } });
  // copy the bytes: the device may reuse/zero its buffers after sending
  dpa.deliver = (from, m) => dpb.push(from, 51820, Uint8Array.from(m));
  dpb.deliver = (from, m) => dpa.push(from, 51820, Uint8Array.from(m));
  const settle = () => {
    for (let i = 0; i < 4; i++) {
      A.drain();
      B.drain();
    }
  };
  return { A, B, dpa, dpb, settle };
}

/** A node with two underlay addresses (Mode "separate"): a datagram leaves from the one of its
 * destination's family, and arrives as an event of that family. */
class DualFakeDataPlane extends FakeDataPlane {
  constructor(readonly v4: string, readonly v6: string) {
    super(v4);
  }
  override sendRaw(address: string, port: number, bytes: Uint8Array) {
    this.sent.push({ address, port, bytes });
    this.deliver?.(address.includes(':') ? this.v6 : this.v4, bytes);
    return true;
  }
  override push(from: string, port: number, msg: Uint8Array) {
    const a = parseAddress(from);
    const r = new Uint8Array(EVENT_RECORD_BYTES);
    r[0] = 1;
    r[1] = a.family;
    new DataView(r.buffer).setUint16(2, port, true);
    r.set(a.bytes, 8);
    new DataView(r.buffer).setUint16(24, msg.length, true);
    r.set(msg, 28);
    this.queue.push(r);
  }
}

describe('WireGuardDevice, Mode "separate": one key, a peer per tunnel', () => {
  function dualPair(bTunnels: Array<4 | 6> = [4, 6]) {
    const ka = generateKeyPair();
    const kb = generateKeyPair();
    const dpa = new DualFakeDataPlane('198.18.0.10', 'fd00:198:18::10');
    const dpb = new DualFakeDataPlane('198.18.0.11', 'fd00:198:18::11');
    const opts = { random: () => 0, wallClockMs: () => clock.now + wall.skewMs };
    const A = new WireGuardDevice({ privateKey: ka.privateKey, dataPlane: dpa, ...opts });
    const B = new WireGuardDevice({ privateKey: kb.privateKey, dataPlane: dpb, ...opts });
    A.addPeer({ id: 1, publicKey: kb.publicKey, endpoint: { address: '198.18.0.11', port: 51820 }, tunnel: 4 });
    A.addPeer({ id: 2, publicKey: kb.publicKey, endpoint: { address: 'fd00:198:18::11', port: 51821 }, tunnel: 6 });
    if (bTunnels.includes(4)) B.addPeer({ id: 7, publicKey: ka.publicKey, endpoint: { address: '198.18.0.10', port: 51820 }, tunnel: 4 });
    if (bTunnels.includes(6)) B.addPeer({ id: 8, publicKey: ka.publicKey, endpoint: { address: 'fd00:198:18::10', port: 51821 }, tunnel: 6 });
    dpa.deliver = (from, m) => dpb.push(from, from.includes(':') ? 51821 : 51820, Uint8Array.from(m));
    dpb.deliver = (from, m) => dpa.push(from, from.includes(':') ? 51821 : 51820, Uint8Array.from(m));
    const settle = () => {
      for (let i = 0; i < 4; i++) (A.drain(), B.drain());
    };
    return { A, B, dpa, dpb, settle, ka, kb };
  }

  it('answers an initiation with the peer of the tunnel it came in on, and keeps the two sessions apart', () => {
    const { A, B, dpa, dpb, settle, kb } = dualPair();
    expect(A.peerWithKey(kb.publicKey, 4)).toBe(1);
    expect(A.peerWithKey(kb.publicKey, 6)).toBe(2);
    B.initiate(8); // B's IPv6 tunnel
    settle();
    expect(dpa.installs().map((i) => i.peer)).toEqual([2]);
    const canon = (a: string) => formatAddress(parseAddress(a));
    expect(canon(dpa.sent.at(-1)!.address)).toBe('fd00:198:18::11'); // the response, over IPv6
    expect(dpa.sent.at(-1)!.port).toBe(51821);
    expect(dpb.installs().map((i) => i.peer)).toEqual([8]);
    B.initiate(7); // then its IPv4 tunnel: a second, independent session
    settle();
    expect(dpa.installs().map((i) => i.peer)).toEqual([2, 1]);
    expect(dpa.sent.at(-1)).toMatchObject({ address: '198.18.0.11', port: 51820 });
    expect(A.sessionsOf(1)).toHaveLength(1);
    expect(A.sessionsOf(2)).toHaveLength(1);
    expect(A.sessionsOf(1)[0]).not.toBe(A.sessionsOf(2)[0]);
    // each tunnel's endpoint stays in its family (no roaming across tunnels, none for another text form)
    expect(dpa.commands.filter((c) => c.op === 'setPeer')).toHaveLength(2);
    expect(A.endpointOf(1)).toEqual({ address: '198.18.0.11', port: 51820 });
    expect(A.endpointOf(2)).toEqual({ address: 'fd00:198:18::11', port: 51821 });
    expect(A.counters.initiations_received).toBe(2);
  });

  it('an initiation over a family the key has no tunnel on is an unknown peer', () => {
    const { A, B, dpa, settle, ka } = dualPair();
    A.removePeer(2); // A keeps only the IPv4 tunnel to B
    B.initiate(8);
    settle();
    expect(A.counters.drop_unknown_peer).toBe(1);
    expect(dpa.installs()).toEqual([]);
    // one key on one tunnel twice is refused, as one key twice without tunnels
    expect(() => B.addPeer({ id: 9, publicKey: ka.publicKey, endpoint: { address: '198.18.0.10', port: 1 }, tunnel: 4 })).toThrow(/IPv4 tunnel\) is already peer 7/);
  });
});

describe('WireGuardDevice', () => {
  it('completes a handshake through the data plane seam and installs mirrored sessions', () => {
    const { A, B, dpa, dpb, settle } = pair();
    A.initiate(1);
    settle();
    const [ia] = dpa.installs();
    const [ib] = dpb.installs();
    expect(ia).toMatchObject({ peer: 1, role: 'current' });
    expect(ib).toMatchObject({ peer: 7, role: 'next' });
    expect(ia!.remoteIndex).toBe(ib!.localIndex);
    expect(ib!.remoteIndex).toBe(ia!.localIndex);
    expect(A.counters.responses_received).toBe(1);
    expect(B.counters.initiations_received).toBe(1);
    expect(dpa.sent[0]!.bytes.length).toBe(148);
    expect(dpb.sent[0]!.bytes.length).toBe(92);
    // the device zeroes its copies of the keys once the command is encoded
    expect(ia!.sendKey.every((x) => x === 0)).toBe(true);
  });

  it('keeps three sessions per peer and retires the oldest', () => {
    const { A, dpa, settle } = pair();
    for (let i = 0; i < 4; i++) {
      clock.now += 1000;
      A.initiate(1);
      settle();
    }
    const installs = dpa.installs();
    expect(installs.length).toBe(4);
    const retired = dpa.commands.filter((c) => c.op === 'retireSession');
    expect(retired).toEqual([{ op: 'retireSession', localIndex: installs[0]!.localIndex }]);
    expect(A.sessionsOf(1)).toEqual(installs.slice(1).map((i) => i.localIndex));
  });

  it('rejects a replayed initiation and a flood of initiations from one peer', () => {
    const { A, B, dpa, dpb, settle } = pair();
    A.initiate(1);
    const init = dpa.sent.at(-1)!.bytes;
    settle();
    dpb.push('198.18.0.10', 51820, init);
    B.drain();
    expect(B.counters.drop_replayed_initiation).toBe(1);
    wall.skewMs += 1000; // a fresh timestamp, but within 20 ms (monotonic) of the last accepted one
    A.initiate(1);
    B.drain();
    expect(B.counters.drop_initiation_flood).toBe(1);
  });

  it('asks for a handshake once per REKEY_TIMEOUT, retries every 5 s, gives up after 90 s', () => {
    const { A, dpa, dpb } = pair();
    dpb.deliver = undefined; // B never answers
    dpa.pushNeed(1);
    dpa.pushNeed(1);
    A.drain();
    expect(A.counters.initiations_sent).toBe(1);
    const start = clock.now;
    while (clock.now - start <= 90_000) {
      clock.now += 100;
      A.poll();
    }
    expect(A.counters.initiations_sent).toBe(18);
    expect(A.counters.handshakes_given_up).toBe(1);
    expect(dpa.commands).toContainEqual({ op: 'clearStaged', peer: 1 });
  });

  it('sends a keepalive 10 s after receiving data when nothing was sent', () => {
    const { A, dpa } = pair();
    A.poll();
    const t = clock.now;
    dpa.activity.set(1, [0, t, t, 0, 0]);
    A.poll();
    clock.now = t + 9_999;
    A.poll();
    expect(dpa.commands.filter((c) => c.op === 'sendKeepalive').length).toBe(0);
    clock.now = t + 10_000;
    A.poll();
    expect(dpa.commands.filter((c) => c.op === 'sendKeepalive')).toEqual([{ op: 'sendKeepalive', peer: 1 }]);
  });

  it('moves a peer endpoint when an authenticated handshake arrives from a new address', () => {
    const { A, B, dpa, dpb } = pair();
    dpb.deliver = (_from, m) => dpa.push('198.18.0.99', 40000, Uint8Array.from(m)); // B now behind a new address
    A.initiate(1);
    B.drain();
    A.drain();
    expect(A.counters.responses_received).toBe(1);
    expect(dpa.commands).toContainEqual({ op: 'setPeer', peer: 1, address: '198.18.0.99', port: 40000 });
    // a copy of that response (no pending handshake any more) moves nothing
    const n = dpa.commands.length;
    dpa.push('198.18.0.66', 1, dpb.sent.at(-1)!.bytes);
    A.drain();
    expect(A.counters.drop_unexpected_response).toBe(1);
    expect(dpa.commands.length).toBe(n);
  });

  it('follows the data plane when it moved a peer endpoint (roaming on data packets)', () => {
    const { A, dpa } = pair();
    A.poll();
    dpa.endpoints.set(1, { address: '198.18.0.77', port: 40000 });
    dpa.activity.set(1, [0, 0, clock.now, 0, 1]);
    A.poll();
    expect(A.endpointOf(1)).toEqual({ address: '198.18.0.77', port: 40000 });
    A.initiate(1);
    expect(dpa.sent.at(-1)).toMatchObject({ address: '198.18.0.77', port: 40000 });
  });
});
