/**
 * The device's seams: what it needs of the data plane, its peers' configuration, its options
 * and its counters (every handshake drop has one).
 */
import type { Command } from '../dataplane/commands.js';
import type { Timing } from './timers.js';

/** What the device needs of the data plane (DataPlane in encrypted mode, or a fake). */
export interface WireGuardDataPlane {
  apply(commands: readonly Command[]): void;
  drainEvents(): Uint8Array | null;
  sendRaw(address: string, port: number, bytes: Uint8Array): boolean;
  /** 5 numbers per id: last data sent, last data received, last auth received, last sent, roams */
  peerActivity(ids: Uint32Array): Float64Array;
  peerEndpoint(id: number): { address: string; port: number } | undefined;
  monotonicMs(): number;
}

export interface WireGuardPeerConfig {
  /** the data plane's peer id (routes name it) */
  id: number;
  publicKey: Uint8Array;
  endpoint: { address: string; port: number };
  presharedKey?: Uint8Array | undefined;
  /** 0 / undefined = off */
  persistentKeepaliveMs?: number | undefined;
  /**
   * Mode "separate" (flanneld's two devices): the underlay family of this peer's tunnel. The same
   * key may then be two peers, one per tunnel, each with its own sessions; an initiation is
   * answered by the peer of the tunnel whose socket it came in on. Undefined: the key's only peer,
   * reached over either family.
   */
  tunnel?: 4 | 6 | undefined;
}

export interface Logger {
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  debug(obj: object, msg?: string): void;
}

export interface DeviceOptions {
  privateKey: Uint8Array;
  dataPlane: WireGuardDataPlane;
  timing?: Partial<Timing>;
  /** wall clock for TAI64N timestamps (must not go backwards across restarts) */
  wallClockMs?: () => number;
  random?: () => number;
  /** how often peer activity is read and timers run (default 100 ms) */
  pollMs?: number;
  /**
   * Peers added within this many ms after start() get a handshake initiation, paced (a node that
   * starts has no sessions while its peers may hold one with its previous run). Default 0 = off;
   * the daemon uses START_HANDSHAKE_WINDOW_MS.
   */
  initiateOnStartMs?: number;
  logger?: Logger;
}

export const HANDSHAKE_COUNTERS = [
  'initiations_sent',
  'initiations_received',
  'responses_sent',
  'responses_received',
  'cookie_replies_sent',
  'cookie_replies_received',
  'sessions_installed',
  'sessions_retired',
  'keepalives_requested',
  'handshakes_given_up',
  /** initiations that waited for the device-wide pace (tuning.ts INITIATIONS_PER_SECOND) */
  'initiations_paced',
  /** initiations to peers added just after start */
  'initiations_on_start',
  /** the data plane saw transport data under an unknown index from a peer's address */
  'unknown_index_reports',
  /** ... from a peer's endpoint, which made us want a handshake with it */
  'unknown_index_handshakes',
  /** ... from a peer we had just made a session with: a keepalive confirms it again */
  'unknown_index_confirmations',
  /** data sent and nothing received for UNANSWERED_PROBE_MS on a two-way flow: initiated */
  'unanswered_probes',
  'drop_bad_mac1',
  'drop_bad_mac2',
  'drop_rate_limited',
  'drop_unknown_peer',
  'drop_bad_handshake',
  'drop_replayed_initiation',
  'drop_initiation_flood',
  'drop_unexpected_response',
  'drop_bad_cookie_reply',
  'under_load_turns',
  /** handshake messages that passed mac2 (a valid cookie) while under load */
  'admitted_under_load',
  /** wall time spent handling data plane events (all synchronous, so ≈ CPU time), ms */
  'events_busy_ms',
] as const;
export type HandshakeCounter = (typeof HANDSHAKE_COUNTERS)[number];
