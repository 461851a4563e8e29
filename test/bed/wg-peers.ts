/**
 * Many WireGuard peers in one light process, for tests of a node with many peers (issue 16): each
 * peer has its own key, its own underlay address (one UDP socket bound to it, port 51820) and its
 * own overlay address, and speaks the real protocol with one target node (a `tulle run` daemon):
 * Noise handshakes either way (noise.ts, cookie.ts), transport data (transport-reference.ts),
 * an ICMP echo request to the target every `pingMs`, and answers to the target's echo requests.
 *
 * Like a WireGuard peer with fixed timers it initiates when it has no session (then at most every
 * REKEY_TIMEOUT) or when its data got nothing back for KEEPALIVE_TIMEOUT + REKEY_TIMEOUT (15 s);
 * it keeps sealing for its session until a new one is confirmed, so a target that restarted must
 * bring it back itself to do better than 15 s. Run inside a namespace:
 *
 *   node dist/test/bed/wg-peers.js CONFIG.json      (bounded by config.seconds)
 *
 * stdout, one JSON object a line (times: wall clock ms):
 *   {"e":"up"}                                     every socket bound
 *   {"e":"reply","peer":i,"seq":n,"sentAt":t,"at":t}   an echo reply from the target
 *   {"e":"initiation","peer":i,"at":t}             a valid initiation from the target
 *   {"e":"session","peer":i,"at":t,"initiator":b}  a session installed
 */
import { createSocket, type Socket } from 'node:dgram';
import { readFileSync } from 'node:fs';
import { MacSigner } from '../../src/wireguard/cookie.js';
import { consumeInitiation, consumeResponse, createInitiation, createResponse, identity, type Identity, type InitiatorState, type SessionKeys } from '../../src/wireguard/noise.js';
import { equalBytes } from '../../src/wireguard/primitives.js';
import { tai64nAfter } from '../../src/wireguard/tai64n.js';
import { openTransport, sealTransport } from '../../src/wireguard/transport-reference.js';
import { readU32 } from '../../src/wireguard/messages.js';
import { inetChecksum } from './craft.js';

export interface WgPeersConfig {
  target: { publicKey: string; address: string; port: number; overlay: string };
  peers: Array<{ privateKey: string; address: string; overlay: string }>;
  pingMs: number;
  seconds: number;
}

const REKEY_TIMEOUT_MS = 5000;
const KEEPALIVE_TIMEOUT_MS = 10_000;

interface Session {
  keys: SessionKeys;
  counter: bigint;
}

interface Peer {
  i: number;
  self: Identity;
  cfg: WgPeersConfig['peers'][number];
  sock: Socket;
  signer: MacSigner;
  pending: InitiatorState | undefined;
  lastInitiationAt: number;
  lastTimestamp: Uint8Array | undefined;
  sessions: Map<number, Session>;
  current: Session | undefined;
  next: Session | undefined;
  seq: number;
  sentAt: Map<number, number>;
  /** first data sent since anything authenticated was received (WireGuard's 15 s rule) */
  unansweredSince: number | undefined;
}

const ipBytes = (a: string) => Uint8Array.from(a.split('.').map(Number));
const emit = (o: object) => process.stdout.write(`${JSON.stringify(o)}\n`);

/** IPv4 + ICMP echo (type 8 request, 0 reply) */
function icmpEcho(src: string, dst: string, type: 0 | 8, id: number, seq: number, payload: Uint8Array): Uint8Array {
  const p = new Uint8Array(20 + 8 + payload.length);
  const v = new DataView(p.buffer);
  p[0] = 0x45;
  v.setUint16(2, p.length);
  p[8] = 64;
  p[9] = 1;
  p.set(ipBytes(src), 12);
  p.set(ipBytes(dst), 16);
  v.setUint16(10, inetChecksum(p.subarray(0, 20)));
  p[20] = type;
  v.setUint16(24, id);
  v.setUint16(26, seq);
  p.set(payload, 28);
  v.setUint16(22, inetChecksum(p.subarray(20)));
  return p;
}

function main(): void {
  const cfg = JSON.parse(readFileSync(process.argv[2]!, 'utf8')) as WgPeersConfig;
  const targetKey = Buffer.from(cfg.target.publicKey, 'base64');
  let nextIndex = 1 + Math.floor(Math.random() * 1e6);
  const peers: Peer[] = [];
  const send = (p: Peer, m: Uint8Array) => p.sock.send(m, cfg.target.port, cfg.target.address);

  const initiate = (p: Peer, now: number) => {
    if (p.pending && now - p.lastInitiationAt < REKEY_TIMEOUT_MS) return;
    const { message, state } = createInitiation(p.self, targetKey, nextIndex++, Date.now());
    p.signer.sign(message, now);
    p.pending = state;
    p.lastInitiationAt = now;
    send(p, message);
  };

  const seal = (p: Peer, s: Session, pkt: Uint8Array) => send(p, sealTransport(s.keys.sendKey, s.keys.remoteIndex, s.counter++, pkt));

  const install = (p: Peer, keys: SessionKeys) => {
    const s = { keys, counter: 0n };
    p.sessions.set(keys.localIndex, s);
    if (keys.initiator) {
      p.current = s;
      seal(p, s, new Uint8Array(0)); // confirm it to the responder
    } else {
      p.next = s;
    }
    emit({ e: 'session', peer: p.i, at: Date.now(), initiator: keys.initiator });
  };

  const onMessage = (p: Peer, m: Uint8Array) => {
    const now = performance.now();
    if (m[0] === 1 && m.length === 148) {
      const got = consumeInitiation(p.self, m);
      if (!got || !equalBytes(got.peerPublicKey, targetKey)) return;
      if (p.lastTimestamp && !tai64nAfter(got.timestamp, p.lastTimestamp)) return;
      p.lastTimestamp = got.timestamp;
      emit({ e: 'initiation', peer: p.i, at: Date.now() });
      const { message, keys } = createResponse(got, undefined, nextIndex++);
      p.signer.sign(message, now);
      send(p, message);
      install(p, keys);
    } else if (m[0] === 2 && m.length === 92) {
      if (!p.pending || readU32(m, 8) !== p.pending.localIndex) return;
      const keys = consumeResponse(p.self, p.pending, undefined, m);
      if (!keys) return;
      p.pending = undefined;
      p.unansweredSince = undefined;
      install(p, keys);
    } else if (m[0] === 3 && m.length === 64) {
      p.signer.consumeReply(m, now);
    } else if (m[0] === 4) {
      const s = p.sessions.get(readU32(m, 4));
      const opened = s && openTransport(s.keys.receiveKey, m);
      if (!s || !opened) return;
      p.unansweredSince = undefined;
      if (s === p.next) {
        p.current = s;
        p.next = undefined;
      }
      const pkt = opened.plaintext;
      if (pkt.length < 28 || pkt[9] !== 1) return;
      const v = new DataView(pkt.buffer, pkt.byteOffset);
      const total = v.getUint16(2);
      if (pkt[20] === 0 && v.getUint16(24) === p.i) {
        const seq = v.getUint16(26);
        const sentAt = p.sentAt.get(seq);
        if (sentAt !== undefined) emit({ e: 'reply', peer: p.i, seq, sentAt, at: Date.now() });
      } else if (pkt[20] === 8 && p.current) {
        seal(p, p.current, icmpEcho(p.cfg.overlay, cfg.target.overlay, 0, v.getUint16(24), v.getUint16(26), pkt.subarray(28, total)));
      }
    }
  };

  let bound = 0;
  cfg.peers.forEach((pc, i) => {
    const sock = createSocket('udp4');
    const p: Peer = {
      i, self: identity(Buffer.from(pc.privateKey, 'base64')), cfg: pc, sock, signer: new MacSigner(targetKey),
      pending: undefined, lastInitiationAt: -Infinity, lastTimestamp: undefined, sessions: new Map(), current: undefined, next: undefined,
      seq: 0, sentAt: new Map(), unansweredSince: undefined,
    };
    peers.push(p);
    sock.on('message', (m) => onMessage(p, new Uint8Array(m.buffer, m.byteOffset, m.length)));
    sock.on('error', (e) => emit({ e: 'error', peer: i, message: e.message }));
    sock.bind(51820, pc.address, () => ++bound === cfg.peers.length && emit({ e: 'up' }));
  });

  const tick = setInterval(() => {
    const now = performance.now();
    for (const p of peers) {
      if (!p.current) {
        initiate(p, now);
        continue;
      }
      p.unansweredSince ??= now;
      if (now - p.unansweredSince >= KEEPALIVE_TIMEOUT_MS + REKEY_TIMEOUT_MS) initiate(p, now);
      const seq = (p.seq = (p.seq + 1) & 0xffff);
      p.sentAt.set(seq, Date.now());
      p.sentAt.delete((seq - 1000) & 0xffff);
      seal(p, p.current, icmpEcho(p.cfg.overlay, cfg.target.overlay, 8, p.i, seq, new Uint8Array(16)));
    }
  }, cfg.pingMs);
  setTimeout(() => {
    clearInterval(tick);
    for (const p of peers) p.sock.close();
  }, cfg.seconds * 1000);
}

main();
