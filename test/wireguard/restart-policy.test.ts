/**
 * What brings a restarted peer back (issue 16), as pure logic with a fake clock and a fake data
 * plane: the "unknown index" event, the device's answer to it (an initiation to the peer's
 * endpoint, within the per-peer and device-wide limits, never to a stranger), start-up
 * initiations paced device-wide, and the survivor's probe of a two-way flow gone silent.
 */
import { describe, expect, it } from 'vitest';
import { WireGuardDevice, type WireGuardDataPlane } from '../../src/wireguard/device.js';
import { decodeEvents, EVENT_RECORD_BYTES } from '../../src/wireguard/events.js';
import { generateKeyPair } from '../../src/wireguard/primitives.js';
import { DEFAULT_TIMING, PeerTimers } from '../../src/wireguard/timers.js';
import { INITIATION_BURST, INITIATIONS_PER_SECOND } from '../../src/wireguard/tuning.js';
import type { Command } from '../../src/dataplane/commands.js';

const clock = { now: 5_000_000 };

class FakeDataPlane implements WireGuardDataPlane {
  commands: Command[] = [];
  sent: Array<{ address: string; port: number; bytes: Uint8Array; at: number }> = [];
  queue: Uint8Array[] = [];
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
    this.sent.push({ address, port, bytes: Uint8Array.from(bytes), at: clock.now });
    return true;
  }
  peerActivity(ids: Uint32Array) {
    return new Float64Array(ids.length * 5);
  }
  peerEndpoint() {
    return undefined;
  }
  monotonicMs() {
    return clock.now;
  }
  /** as wg-data.c reports it: kind 3, family 4, port, address */
  pushUnknownIndex(address: string, port: number) {
    const r = new Uint8Array(EVENT_RECORD_BYTES);
    r[0] = 3;
    r[1] = 4;
    new DataView(r.buffer).setUint16(2, port, true);
    r.set(address.split('.').map(Number), 8);
    this.queue.push(r);
  }
  pushNeed(peer: number) {
    const r = new Uint8Array(EVENT_RECORD_BYTES);
    r[0] = 2;
    new DataView(r.buffer).setUint32(4, peer, true);
    this.queue.push(r);
  }
  initiations() {
    return this.sent.filter((s) => s.bytes[0] === 1 && s.bytes.length === 148);
  }
}

function device(o: { initiateOnStartMs?: number } = {}) {
  const dp = new FakeDataPlane();
  const dev = new WireGuardDevice({ privateKey: generateKeyPair().privateKey, dataPlane: dp, random: () => 0, wallClockMs: () => clock.now, ...o });
  return { dp, dev };
}

describe('the unknown-index event', () => {
  it('decodes kind 3 records: source address and port, no peer', () => {
    const dp = new FakeDataPlane();
    dp.pushUnknownIndex('198.18.0.11', 51820);
    expect(decodeEvents(dp.drainEvents()!)).toEqual([{ kind: 'unknown-index', family: 4, address: '198.18.0.11', port: 51820 }]);
  });
});

describe('a node that lost its sessions (restarted)', () => {
  it('answers transport data under an unknown index from a peer endpoint with one initiation to that peer', () => {
    const { dp, dev } = device();
    dev.addPeer({ id: 3, publicKey: generateKeyPair().publicKey, endpoint: { address: '198.18.0.11', port: 51820 } });
    dp.pushUnknownIndex('198.18.0.11', 51820);
    dev.drain();
    expect(dp.initiations().map((s) => `${s.address}:${s.port}`)).toEqual(['198.18.0.11:51820']);
    expect(dev.counters.unknown_index_handshakes).toBe(1);
    // more reports within REKEY_TIMEOUT: the initiation in flight stands, no second one
    for (let i = 0; i < 10; i++) {
      clock.now += 250;
      dp.pushUnknownIndex('198.18.0.11', 51820);
      dev.drain();
    }
    expect(dp.initiations().length).toBe(1);
    expect(dev.counters.unknown_index_reports).toBe(11);
  });

  it('never initiates for an endpoint that is no peer (another port at a peer address, a stranger)', () => {
    const { dp, dev } = device();
    dev.addPeer({ id: 3, publicKey: generateKeyPair().publicKey, endpoint: { address: '198.18.0.11', port: 51820 } });
    dp.pushUnknownIndex('198.18.0.11', 40000);
    dp.pushUnknownIndex('198.18.0.99', 51820);
    dev.drain();
    expect(dp.sent).toEqual([]);
    expect(dev.counters.unknown_index_reports).toBe(2);
    expect(dev.counters.unknown_index_handshakes).toBe(0);
  });

  it('right after a handshake with that peer, confirms the new session with a keepalive instead', () => {
    const a = device();
    const b = device();
    const kb = b.dev.publicKey;
    a.dev.addPeer({ id: 1, publicKey: kb, endpoint: { address: '198.18.0.11', port: 51820 } });
    b.dev.addPeer({ id: 2, publicKey: a.dev.publicKey, endpoint: { address: '198.18.0.10', port: 51820 } });
    // one handshake, carried by hand between the two fakes
    const carry = (from: FakeDataPlane, to: FakeDataPlane, fromAddr: string) => {
      const m = from.sent.at(-1)!.bytes;
      const r = new Uint8Array(EVENT_RECORD_BYTES);
      r[0] = 1;
      r[1] = 4;
      new DataView(r.buffer).setUint16(2, 51820, true);
      r.set(fromAddr.split('.').map(Number), 8);
      new DataView(r.buffer).setUint16(24, m.length, true);
      r.set(m, 28);
      to.queue.push(r);
    };
    a.dev.initiate(1);
    carry(a.dp, b.dp, '198.18.0.10');
    b.dev.drain();
    carry(b.dp, a.dp, '198.18.0.11');
    a.dev.drain();
    expect(a.dev.sessionsOf(1).length).toBe(1);
    clock.now += 100;
    a.dp.pushUnknownIndex('198.18.0.11', 51820); // b still seals for a session a lost
    a.dev.drain();
    expect(a.dp.initiations().length).toBe(1);
    expect(a.dp.commands.filter((c) => c.op === 'sendKeepalive')).toEqual([{ op: 'sendKeepalive', peer: 1 }]);
    expect(a.dev.counters.unknown_index_confirmations).toBe(1);
  });

  it('initiates to every peer added at start, paced device-wide, traffic first', () => {
    const { dp, dev } = device({ initiateOnStartMs: 10_000 });
    dev.start();
    try {
      const t0 = clock.now;
      for (let id = 1; id <= 50; id++) dev.addPeer({ id, publicKey: generateKeyPair().publicKey, endpoint: { address: `198.18.1.${id}`, port: 51820 } });
      expect(dp.initiations().length).toBe(INITIATION_BURST);
      dp.pushNeed(50); // traffic waits for peer 50: it goes before the remaining start-up ones
      dev.drain();
      expect(dev.counters.initiations_paced).toBe(1);
      clock.now += 100;
      dev.poll();
      expect(dp.initiations()[INITIATION_BURST]!.address).toBe('198.18.1.50');
      while (clock.now - t0 < 3000) {
        clock.now += 100;
        dev.poll();
      }
      const sent = dp.initiations();
      expect(new Set(sent.map((s) => s.address)).size).toBe(50);
      expect(sent.length).toBe(50);
      expect(dev.counters.initiations_on_start).toBe(49);
      // never more than the burst plus the rate over any stretch
      for (const s of sent) {
        const within = sent.filter((x) => x.at >= s.at && x.at < s.at + 1000).length;
        expect(within).toBeLessThanOrEqual(INITIATION_BURST + INITIATIONS_PER_SECOND);
      }
      const last = sent.at(-1)!.at - t0;
      expect(last).toBeLessThanOrEqual(Math.ceil(((50 - INITIATION_BURST) / INITIATIONS_PER_SECOND) * 1000) + 100);
    } finally {
      dev.stop();
    }
  });

  it('does not initiate to peers added later than the start window, nor without the option', () => {
    const { dp, dev } = device({ initiateOnStartMs: 10_000 });
    dev.start();
    clock.now += 10_001;
    dev.addPeer({ id: 1, publicKey: generateKeyPair().publicKey, endpoint: { address: '198.18.1.1', port: 51820 } });
    dev.stop();
    const plain = device();
    plain.dev.start();
    plain.dev.addPeer({ id: 1, publicKey: generateKeyPair().publicKey, endpoint: { address: '198.18.1.1', port: 51820 } });
    plain.dev.stop();
    expect(dp.sent.length + plain.dp.sent.length).toBe(0);
  });
});

describe('the survivor: a two-way flow gone silent', () => {
  it('initiates once when data is still sent 1 s after it went unanswered, if the peer had been sending data', () => {
    const t = new PeerTimers(DEFAULT_TIMING, () => 0);
    t.dataReceived(1000);
    t.anyAuthenticatedReceived(1000);
    t.dataSent(1010);
    t.dataSent(2000);
    expect(t.due(2000)).toEqual([]);
    t.dataSent(2010);
    expect(t.due(2010)).toEqual(['probe-initiation']);
    t.initiationSent(2010);
    // still silent: no second probe in this silence (the retransmit timer takes over)
    t.dataSent(3100);
    t.dataSent(4000);
    expect(t.due(4000)).toEqual([]);
    expect(t.nextDeadline()).toBe(2010 + 5000);
    // an answer ends the silence; the next one is probed again
    t.sessionDerived(7100);
    t.anyAuthenticatedReceived(7100);
    t.dataReceived(7100);
    t.dataSent(8000);
    t.dataSent(9000);
    expect(t.due(9000)).toEqual(['probe-initiation']);
  });

  it('does not probe after a last reply: one send after the peer went quiet is no silence', () => {
    const t = new PeerTimers(DEFAULT_TIMING, () => 0);
    t.dataReceived(1000);
    t.anyAuthenticatedReceived(1000);
    t.dataSent(1001); // the echo reply to the peer's last request
    for (let now = 1100; now < 9000; now += 100) expect(t.due(now)).not.toContain('probe-initiation');
  });

  it('does not probe a one-way flow (nothing received, or data last received > KEEPALIVE_TIMEOUT ago)', () => {
    const t = new PeerTimers(DEFAULT_TIMING, () => 0);
    t.dataSent(0);
    t.dataSent(1000);
    expect(t.due(1000)).toEqual([]);
    const u = new PeerTimers(DEFAULT_TIMING, () => 0);
    u.dataReceived(0);
    u.anyAuthenticatedReceived(0);
    u.dataSent(10_001);
    u.dataSent(11_001);
    expect(u.due(11_001)).not.toContain('probe-initiation');
    expect(u.due(25_001)).toEqual(['send-initiation']); // WireGuard's own 15 s rule still applies
  });

  it('anything authenticated received before the deadline cancels the probe; 0 turns it off', () => {
    const t = new PeerTimers(DEFAULT_TIMING, () => 0);
    t.dataReceived(0);
    t.dataSent(10);
    t.anyAuthenticatedReceived(500);
    t.dataSent(1010);
    expect(t.due(1010)).toEqual([]);
    const off = new PeerTimers({ ...DEFAULT_TIMING, unansweredProbeMs: 0 }, () => 0);
    off.dataReceived(0);
    off.dataSent(10);
    off.dataSent(1010);
    expect(off.due(1010)).toEqual([]);
  });
});
