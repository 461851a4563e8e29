/**
 * The I/O driver of encrypted mode: it owns the handshake state of every peer and connects
 * the pure modules (handshake-gate.ts, noise.ts, timers.ts) to the native data plane.
 *
 *   data plane events ──▶ drain (bounded per turn) ──▶ handshake message: gate (load, rate,
 *                                                      macs, cookies) →
 *                                                      noise → install session / send response
 *                                                    ├▶ needs handshake: timers allow? → initiate
 *                                                    └▶ unknown index from a peer's endpoint: the
 *                                                       peer holds a session we lost → initiate
 *   poll (every pollMs): peer activity from native memory → timers → initiations, keepalives,
 *                        give-ups (drop staged), zeroed keys
 *   initiate: device-wide pace (token bucket); what waits is sent from the poll, initiations that
 *             traffic waits for first, then the ones to every peer added just after start()
 *
 * Peers are found by (static key, tunnel): in Mode "separate" one key is two peers, an IPv4 and an
 * IPv6 tunnel (tunnelKey), and an initiation goes to the one of the family it arrived over.
 *
 * Sessions: at most three per peer are kept installed (previous, current, next); installing a
 * fourth retires the oldest. Nothing here runs per data packet, and no key is ever logged.
 */
import { HandshakeGate } from './handshake-gate.js';
import { decodeEvents, type DataPlaneEvent } from './events.js';
import { messageKind, readU32 } from './messages.js';
import { consumeInitiation, consumeResponse, createInitiation, createResponse, identity, type Identity, type SessionKeys } from './noise.js';
import { SessionIndices } from './session-indices.js';
import { tai64nAfter } from './tai64n.js';
import { DEFAULT_TIMING, type PeerTimers, type Timing } from './timers.js';
import { HANDSHAKE_INITIATION_RATE_MS, UNDER_LOAD_PENDING } from './tuning.js';
import { ACTIVITY_FIELDS, countHandshake, endpointKey, newPeerState, observeActivity, tunnelKey, type PeerState } from './device-peer.js';
import { InitiationPace } from './initiation-pace.js';
import type { Command } from '../dataplane/commands.js';
import type { PeerTraffic } from '../dataplane/dataplane.js';
import { HANDSHAKE_COUNTERS, type DeviceOptions, type HandshakeCounter, type Logger, type WireGuardDataPlane, type WireGuardPeerConfig } from './device-types.js';

import { TulleError } from '../util/errors.js';

export * from './device-types.js';

const MAX_EVENTS_PER_TURN = 1024;
const MIN_BUSY_PAUSE_MS = 10;
const SESSIONS_KEPT = 3;

export class WireGuardDevice {
  readonly counters: Record<HandshakeCounter, number>;
  readonly publicKey: Uint8Array;
  private readonly self: Identity;
  private readonly dp: WireGuardDataPlane;
  private readonly timing: Timing;
  private readonly wallClockMs: () => number;
  private readonly random: () => number;
  private readonly log: Logger | undefined;
  private readonly gate: HandshakeGate;
  private readonly indices = new SessionIndices();
  private readonly peers = new Map<number, PeerState>();
  private readonly byKey = new Map<string, PeerState>();
  /** our index in an initiation in flight → its peer */
  private readonly pendingByIndex = new Map<number, PeerState>();
  private drainTimer: NodeJS.Timeout | undefined;
  /** no drain before this (performance.now() ms): the pause after a busy turn */
  private quietUntil = 0;
  private pollTimer: NodeJS.Timeout | undefined;
  private readonly pollMs: number;
  /** device-wide pace of initiations, and what waits for it */
  private readonly pace = new InitiationPace();
  private readonly initiateOnStartMs: number;
  private startedAt = -Infinity;
  /** peers by endpointKey, built when needed; undefined after any peer or endpoint change */
  private byEndpoint: Map<string, PeerState> | undefined;

  constructor(o: DeviceOptions) {
    this.self = identity(o.privateKey);
    this.publicKey = this.self.publicKey;
    this.dp = o.dataPlane;
    this.timing = { ...DEFAULT_TIMING, ...o.timing };
    this.wallClockMs = o.wallClockMs ?? Date.now;
    this.random = o.random ?? Math.random;
    this.log = o.logger;
    this.pollMs = o.pollMs ?? 100;
    this.initiateOnStartMs = o.initiateOnStartMs ?? 0;
    this.gate = new HandshakeGate(this.self, this.dp.monotonicMs());
    this.counters = Object.fromEntries(HANDSHAKE_COUNTERS.map((k) => [k, 0])) as Record<HandshakeCounter, number>;
  }

  /** Starts the timer loop; call onEvents() whenever the data plane signals events. */
  start(): void {
    if (!this.pollTimer) this.startedAt = this.dp.monotonicMs();
    this.pollTimer ??= setInterval(() => this.poll(), this.pollMs);
  }

  stop(): void {
    clearInterval(this.pollTimer);
    clearTimeout(this.drainTimer);
    this.pollTimer = this.drainTimer = undefined;
  }

  /** The data plane's wake-up: drains on the next turn of the event loop. */
  readonly onEvents = (): void => {
    this.drainTimer ??= setTimeout(() => this.drain(), Math.max(0, this.quietUntil - performance.now()));
  };

  addPeer(cfg: WireGuardPeerConfig): void {
    if (this.peers.has(cfg.id)) this.removePeer(cfg.id);
    const p = newPeerState(cfg, this.timing, this.random);
    const other = this.byKey.get(tunnelKey(p.keyB64, cfg.tunnel));
    if (other) throw new TulleError('ERR_TULLE_WG_PEER', `peer ${cfg.id}: public key ${p.keyB64}${cfg.tunnel ? ` (IPv${cfg.tunnel} tunnel)` : ''} is already peer ${other.cfg.id}`);
    this.peers.set(cfg.id, p);
    this.byKey.set(tunnelKey(p.keyB64, cfg.tunnel), p);
    this.byEndpoint = undefined;
    this.dp.apply([{ op: 'setPeer', peer: cfg.id, address: cfg.endpoint.address, port: cfg.endpoint.port }]);
    const now = this.dp.monotonicMs();
    if (this.initiateOnStartMs > 0 && now - this.startedAt <= this.initiateOnStartMs) {
      this.pace.addOnStart(cfg.id);
      this.pump(now);
    }
  }

  removePeer(id: number): void {
    const p = this.peers.get(id);
    if (!p) return;
    this.retireAll(p);
    this.dropPending(p);
    this.peers.delete(id);
    this.byKey.delete(tunnelKey(p.keyB64, p.cfg.tunnel));
    this.pace.forget(id);
    this.byEndpoint = undefined;
    this.dp.apply([{ op: 'deletePeer', peer: id }]);
  }

  /** Starts a handshake with a peer now (tests; the data plane asks by itself when it needs one). */
  initiate(id: number): void {
    const p = this.peers.get(id);
    if (p) this.sendInitiation(p, this.dp.monotonicMs());
  }

  /** The peer id that holds a public key (on a tunnel, in Mode "separate"), if any. */
  peerWithKey(publicKey: Uint8Array, tunnel?: 4 | 6): number | undefined {
    return this.byKey.get(tunnelKey(Buffer.from(publicKey).toString('base64'), tunnel))?.cfg.id;
  }

  /** Where handshake messages for a peer go (follows handshakes and the data plane's roaming). */
  endpointOf(id: number): { address: string; port: number } | undefined {
    const p = this.peers.get(id);
    return p && { ...p.endpoint };
  }

  /**
   * What `tulle status` and `wg show` report of a peer (read-only): its key, where handshakes go,
   * when the newest session was installed and the last authenticated packet each way (monotonic
   * ms of the data plane's clock, -Infinity for never), the persistent keepalive.
   */
  peerInfo(id: number):
    | { publicKey: Uint8Array; endpoint: { address: string; port: number }; handshakeAt: number; lastSent: number; lastReceived: number; persistentKeepaliveMs: number; handshakes: PeerTraffic }
    | undefined {
    const p = this.peers.get(id);
    if (!p) return undefined;
    const seen = (t: number) => (t > 0 ? t : -Infinity);
    return {
      publicKey: p.cfg.publicKey, endpoint: { ...p.endpoint }, handshakeAt: p.sessionAt,
      lastSent: seen(p.activity[3]!), lastReceived: seen(p.activity[2]!), persistentKeepaliveMs: p.cfg.persistentKeepaliveMs ?? 0,
      handshakes: { ...p.handshakes },
    };
  }

  /** The local indices installed for a peer, oldest first (tests, status). */
  sessionsOf(id: number): readonly number[] {
    return this.peers.get(id)?.sessions ?? [];
  }

  // ---- events from the data plane --------------------------------------------------------

  /** Handles waiting events now (the data plane wake-up schedules this; tests call it). */
  drain(): void {
    this.drainTimer = undefined;
    const started = performance.now();
    const now = this.dp.monotonicMs();
    const events: DataPlaneEvent[] = [];
    for (let buf = this.dp.drainEvents(); buf; buf = events.length < MAX_EVENTS_PER_TURN ? this.dp.drainEvents() : null) {
      events.push(...decodeEvents(buf));
    }
    if (this.gate.observePending(events.filter((e) => e.kind === 'handshake').length, now)) this.counters.under_load_turns++;
    for (const e of events) {
      if (e.kind === 'handshake') this.onHandshakeMessage(e, now);
      else if (e.kind === 'unknown-index') this.onUnknownIndex(e.address, e.port, now);
      else this.onNeedHandshake(e.peer, now);
    }
    this.pump(now);
    // after a busy turn, stay away at least as long as it took, so handshake processing never
    // takes more than about half of a core however hard the flood (the native ring drops and
    // counts the rest); a full turn means more is waiting: come back by ourselves
    const end = performance.now();
    const took = end - started;
    this.counters.events_busy_ms += took;
    if (events.length >= UNDER_LOAD_PENDING) this.quietUntil = end + Math.max(MIN_BUSY_PAUSE_MS, took);
    if (events.length >= MAX_EVENTS_PER_TURN) this.drainTimer = setTimeout(() => this.drain(), this.quietUntil - end);
  }

  private onNeedHandshake(id: number, now: number): void {
    const p = this.peers.get(id);
    if (p && p.timers.wantHandshake(now)) this.initiatePaced(p, now);
  }

  /**
   * Transport data under an index we do not know came from a peer's endpoint (the data plane
   * reports each source at most every 250 ms): the peer still seals for a session we lost — we
   * restarted — or retired. Never answered to the datagram (its source may be forged): at most a
   * handshake initiation to the peer's known endpoint, within the peer's own limit of one per
   * REKEY_TIMEOUT and the device-wide pace; nothing for an endpoint that is no peer. Right after a
   * new session, the peer has just not switched yet: confirm ours with a keepalive instead.
   */
  private onUnknownIndex(address: string, port: number, now: number): void {
    this.counters.unknown_index_reports++;
    this.byEndpoint ??= new Map([...this.peers.values()].map((x) => [endpointKey(x.endpoint.address, x.endpoint.port), x]));
    const p = this.byEndpoint.get(endpointKey(address, port));
    if (!p) return;
    if (now - p.sessionAt < this.timing.rekeyTimeoutMs) {
      this.counters.unknown_index_confirmations++;
      this.dp.apply([{ op: 'sendKeepalive', peer: p.cfg.id }]);
      return;
    }
    this.counters.unknown_index_handshakes++;
    if (p.timers.wantHandshake(now)) this.initiatePaced(p, now);
  }

  private onHandshakeMessage(e: Extract<DataPlaneEvent, { kind: 'handshake' }>, now: number): void {
    const m = e.message;
    const kind = messageKind(m);
    if (kind === 'cookie-reply') return this.onCookieReply(m, now);
    if (kind !== 'initiation' && kind !== 'response') return;
    const v = this.gate.admit(m, e.address, e.source, now);
    if (!v.pass) {
      if (v.reason === 'cookie') {
        this.dp.sendRaw(e.address, e.port, v.reply);
        this.counters.cookie_replies_sent++;
      } else {
        this.counters[v.reason === 'rate-limited' ? 'drop_rate_limited' : v.reason === 'bad-mac1' ? 'drop_bad_mac1' : 'drop_bad_mac2']++;
      }
      return;
    }
    if (this.gate.underLoad(now)) this.counters.admitted_under_load++;
    if (kind === 'initiation') this.onInitiation(m, e, now);
    else this.onResponse(m, e, now);
  }

  private onInitiation(m: Uint8Array, from: { family: 4 | 6; address: string; port: number }, now: number): void {
    const got = consumeInitiation(this.self, m);
    if (!got) {
      this.counters.drop_bad_handshake++;
      return;
    }
    // the key's only peer, or the peer of the tunnel whose socket took the initiation
    const k = Buffer.from(got.peerPublicKey).toString('base64');
    const p = this.byKey.get(k) ?? this.byKey.get(tunnelKey(k, from.family));
    if (!p) {
      this.counters.drop_unknown_peer++;
      return;
    }
    if (p.lastTimestamp && !tai64nAfter(got.timestamp, p.lastTimestamp)) {
      this.counters.drop_replayed_initiation++;
      return;
    }
    if (now - p.lastInitiationAt < HANDSHAKE_INITIATION_RATE_MS) {
      this.counters.drop_initiation_flood++;
      return;
    }
    this.counters.initiations_received++;
    countHandshake(p, 'rx', m.length);
    p.lastTimestamp = got.timestamp;
    p.lastInitiationAt = now;
    const localIndex = this.indices.allocate();
    const { message, keys } = createResponse(got, p.cfg.presharedKey, localIndex);
    p.signer.sign(message, now);
    this.roam(p, from);
    this.install(p, keys, now);
    if (this.dp.sendRaw(from.address, from.port, message)) countHandshake(p, 'tx', message.length);
    this.counters.responses_sent++;
  }

  private onResponse(m: Uint8Array, from: { address: string; port: number }, now: number): void {
    const index = readU32(m, 8);
    const p = this.pendingByIndex.get(index);
    if (!p || !p.pending) {
      this.counters.drop_unexpected_response++;
      return;
    }
    const keys = consumeResponse(this.self, p.pending, p.cfg.presharedKey, m);
    if (!keys) {
      this.counters.drop_bad_handshake++;
      return;
    }
    this.counters.responses_received++;
    countHandshake(p, 'rx', m.length);
    this.pendingByIndex.delete(index);
    p.pending.ephemeral.privateKey.fill(0);
    p.pending = undefined;
    this.roam(p, from);
    this.install(p, keys, now);
  }

  private onCookieReply(m: Uint8Array, now: number): void {
    const p = this.pendingByIndex.get(readU32(m, 4)) ?? this.peerBySessionIndex(readU32(m, 4));
    if (p && p.signer.consumeReply(m, now)) this.counters.cookie_replies_received++;
    else this.counters.drop_bad_cookie_reply++;
  }

  private peerBySessionIndex(index: number): PeerState | undefined {
    for (const p of this.peers.values()) if (p.sessions.includes(index)) return p;
    return undefined;
  }

  // ---- sending ---------------------------------------------------------------------------

  /** An initiation now if the device-wide pace allows, else queued for the poll (pump). */
  private initiatePaced(p: PeerState, now: number): void {
    const r = this.pace.request(p.cfg.id, now);
    if (r === 'now') this.sendInitiation(p, now);
    else if (r === 'queued') this.counters.initiations_paced++;
  }

  /** Sends what the pace allows: waiting initiations first, then the start-up ones. */
  private pump(now: number): void {
    this.pace.pump(now, (id) => this.peers.get(id), (p, onStart) => {
      if (onStart) this.counters.initiations_on_start++;
      this.sendInitiation(p, now);
    });
  }

  private sendInitiation(p: PeerState, now: number): void {
    this.dropPending(p);
    const localIndex = this.indices.allocate();
    const { message, state } = createInitiation(this.self, p.cfg.publicKey, localIndex, this.wallClockMs());
    p.signer.sign(message, now);
    p.pending = state;
    this.pendingByIndex.set(localIndex, p);
    p.timers.initiationSent(now);
    if (this.dp.sendRaw(p.endpoint.address, p.endpoint.port, message)) countHandshake(p, 'tx', message.length);
    this.counters.initiations_sent++;
  }

  private dropPending(p: PeerState): void {
    if (!p.pending) return;
    this.pendingByIndex.delete(p.pending.localIndex);
    this.indices.free(p.pending.localIndex);
    p.pending.ephemeral.privateKey.fill(0);
    p.pending = undefined;
  }

  private install(p: PeerState, keys: SessionKeys, now: number): void {
    const cmds: Command[] = [
      {
        op: 'installSession',
        peer: p.cfg.id,
        localIndex: keys.localIndex,
        remoteIndex: keys.remoteIndex,
        role: keys.initiator ? 'current' : 'next',
        sendKey: keys.sendKey,
        receiveKey: keys.receiveKey,
      },
    ];
    p.sessions.push(keys.localIndex);
    p.sessionAt = now;
    while (p.sessions.length > SESSIONS_KEPT) cmds.push(this.retire(p.sessions.shift()!));
    this.dp.apply(cmds);
    keys.sendKey.fill(0);
    keys.receiveKey.fill(0);
    p.timers.sessionDerived(now);
    this.counters.sessions_installed++;
    this.log?.debug({ peer: p.cfg.id, initiator: keys.initiator }, 'session installed');
  }

  private retire(localIndex: number): Command {
    this.indices.free(localIndex);
    this.counters.sessions_retired++;
    return { op: 'retireSession', localIndex };
  }

  private retireAll(p: PeerState): void {
    const cmds = p.sessions.map((i) => this.retire(i));
    p.sessions = [];
    if (cmds.length) this.dp.apply(cmds);
  }

  /** An authenticated handshake message from a new address moves the peer's endpoint. */
  private roam(p: PeerState, from: { address: string; port: number }): void {
    if (endpointKey(from.address, from.port) === endpointKey(p.endpoint.address, p.endpoint.port)) return; // (IPv6: one text form)
    p.endpoint = { address: from.address, port: from.port };
    this.byEndpoint = undefined;
    this.dp.apply([{ op: 'setPeer', peer: p.cfg.id, address: from.address, port: from.port }]);
  }

  // ---- timers ----------------------------------------------------------------------------

  /** Reads peer activity and runs due timers. Public so tests can drive it with a fake clock. */
  poll(): void {
    if (!this.peers.size) return;
    const now = this.dp.monotonicMs();
    this.pump(now);
    const list = [...this.peers.values()];
    const act = this.dp.peerActivity(Uint32Array.from(list, (p) => p.cfg.id));
    list.forEach((p, i) => {
      if (observeActivity(p, act.subarray(i * ACTIVITY_FIELDS, (i + 1) * ACTIVITY_FIELDS))) {
        // the data plane followed the peer to a new address: initiations go there too
        const ep = this.dp.peerEndpoint(p.cfg.id);
        if (ep) p.endpoint = ep;
        this.byEndpoint = undefined;
      }
      for (const action of p.timers.due(now)) this.act(p, action, now);
    });
  }

  private act(p: PeerState, action: ReturnType<PeerTimers['due']>[number], now: number): void {
    switch (action) {
      case 'send-initiation':
        this.initiatePaced(p, now);
        break;
      case 'probe-initiation':
        this.counters.unanswered_probes++;
        this.initiatePaced(p, now);
        break;
      case 'send-keepalive':
        this.counters.keepalives_requested++;
        this.dp.apply([{ op: 'sendKeepalive', peer: p.cfg.id }]);
        break;
      case 'give-up':
        this.counters.handshakes_given_up++;
        this.dropPending(p);
        this.dp.apply([{ op: 'clearStaged', peer: p.cfg.id }]);
        this.log?.info({ peer: p.cfg.id }, 'handshake gave up after 90 s');
        break;
      case 'zero-keys':
        this.retireAll(p);
        this.dropPending(p);
        break;
    }
  }
}
