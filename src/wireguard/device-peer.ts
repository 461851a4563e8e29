/**
 * One peer as the WireGuard device keeps it: its handshake state, where handshakes go, its
 * sessions, and the data plane's activity as last read. What is done per peer without the rest
 * of the device lives here: making the state, counting handshake bytes, the keys the device
 * finds peers by, and folding the data plane's activity into the peer's timers.
 */
import { MacSigner } from './cookie.js';
import type { InitiatorState } from './noise.js';
import { PeerTimers, type Timing } from './timers.js';
import { formatAddress, parseAddress } from '../util/ip.js';
import type { PeerTraffic } from '../dataplane/dataplane.js';
import type { WireGuardPeerConfig } from './device-types.js';

/** The data plane's activity per peer, in this order (peerActivity gives 5 numbers a peer). */
export const ACTIVITY_FIELDS = 5;

export interface PeerState {
  cfg: WireGuardPeerConfig;
  keyB64: string;
  signer: MacSigner;
  timers: PeerTimers;
  endpoint: { address: string; port: number };
  lastTimestamp: Uint8Array | undefined;
  lastInitiationAt: number;
  pending: InitiatorState | undefined;
  /** local indices installed, oldest first */
  sessions: number[];
  /** when the newest session was installed (monotonic ms) */
  sessionAt: number;
  /** the data plane's last activity read: txData, rxData, rxAny, txAny (monotonic ms), roams */
  activity: Float64Array;
  /** handshake messages sent to the peer and accepted from it (initiations, responses), which
   * WireGuard counts in a peer's transfer beside transport data (the data plane counts that) */
  handshakes: PeerTraffic;
}

export function newPeerState(cfg: WireGuardPeerConfig, timing: Timing, random: () => number): PeerState {
  return {
    cfg,
    keyB64: Buffer.from(cfg.publicKey).toString('base64'),
    signer: new MacSigner(cfg.publicKey),
    timers: new PeerTimers({ ...timing, persistentKeepaliveMs: cfg.persistentKeepaliveMs ?? 0 }, random),
    endpoint: { ...cfg.endpoint },
    lastTimestamp: undefined,
    lastInitiationAt: -Infinity,
    pending: undefined,
    sessions: [],
    sessionAt: -Infinity,
    activity: new Float64Array(ACTIVITY_FIELDS),
    handshakes: { txPackets: 0, txBytes: 0, rxPackets: 0, rxBytes: 0 },
  };
}

/** As the kernel and wireguard-go do: an initiation or response sent to a peer, or accepted from
 * it, counts in its transfer (cookie replies do not: they answer a datagram, not a peer). */
export function countHandshake(p: PeerState, dir: 'tx' | 'rx', bytes: number): void {
  if (dir === 'tx') (p.handshakes.txPackets++, (p.handshakes.txBytes += bytes));
  else (p.handshakes.rxPackets++, (p.handshakes.rxBytes += bytes));
}

/** The byKey entry of a peer: its key, and its tunnel's family when it has one (Mode "separate"). */
export function tunnelKey(keyB64: string, tunnel: 4 | 6 | undefined): string {
  return tunnel === undefined ? keyB64 : `${keyB64}/v${tunnel}`;
}

/** address:port with the address in one canonical text form (IPv6 compressed). */
export function endpointKey(address: string, port: number): string {
  try {
    return `${formatAddress(parseAddress(address))}:${port}`;
  } catch {
    return `${address}:${port}`;
  }
}

/**
 * Folds one read of the data plane's activity (`act`: this peer's ACTIVITY_FIELDS numbers) into
 * the peer's timers, oldest event first, and keeps it. Returns whether the data plane followed
 * the peer to a new address since the last read (then its endpoint must be read again).
 */
export function observeActivity(p: PeerState, act: Float64Array): boolean {
  const [txData, rxData, rxAny, txAny, roams] = Array.from(act) as [number, number, number, number, number];
  const roamed = roams > p.activity[4]!;
  const seen: Array<[number, () => void]> = [];
  if (rxAny > p.activity[2]!) seen.push([rxAny, () => p.timers.anyAuthenticatedReceived(rxAny)]);
  if (rxData > p.activity[1]!) seen.push([rxData, () => p.timers.dataReceived(rxData)]);
  if (txAny > p.activity[3]!) seen.push([txAny, () => p.timers.anyAuthenticatedSent(txAny)]);
  if (txData > p.activity[0]!) seen.push([txData, () => p.timers.dataSent(txData)]);
  seen.sort((a, b) => a[0] - b[0]).forEach(([, f]) => f());
  p.activity.set([txData, rxData, rxAny, txAny, roams]);
  return roamed;
}
