/**
 * What `tulle status` gets from the daemon: the node's status (as /healthz shows it), one row
 * per peer, and the data plane's drops by reason. Plain data (numbers, strings), so it travels
 * as CBOR and prints as JSON unchanged. Times are wall-clock ms since the epoch.
 */
import type { NodeStatus } from '../node/node.js';

import type { PeerTraffic } from '../dataplane/dataplane.js';
export type { PeerTraffic } from '../dataplane/dataplane.js';

export interface PeerView {
  id: number;
  /** the lease subnets routed to this peer (normally one) */
  subnets: string[];
  /** address:port the data plane sends to */
  endpoint: string;
  publicKey?: string | undefined;
  lastHandshakeAt?: number | undefined;
  lastSentAt?: number | undefined;
  lastReceivedAt?: number | undefined;
  persistentKeepaliveSeconds?: number | undefined;
  /** datagrams and their UDP payload bytes sent to and accepted from the peer (encrypted mode:
   * transport messages and handshake initiations/responses, as `wg show`'s transfer) */
  traffic?: PeerTraffic | undefined;
  /** the data plane's drops pinned on this peer, by counter name (e.g. inbound_drop_spoofed_source),
   * only those above zero; drops that name no peer are only in StatusSnapshot.drops */
  drops?: Record<string, number> | undefined;
}

export interface StatusSnapshot {
  version: string;
  at: number;
  tun: string | undefined;
  listenPort: number | undefined;
  node: NodeStatus;
  peers: PeerView[];
  /** data-plane drops by counter name (e.g. inbound_drop_replay), only those above zero */
  drops: Record<string, number>;
}

/** A peer's transfer as WireGuard reports it: the data plane's datagrams plus, in encrypted mode,
 * the handshake messages (sent and accepted) the control plane exchanged with the peer. */
export function addTraffic(a: PeerTraffic | undefined, b: PeerTraffic | undefined): PeerTraffic | undefined {
  if (!a || !b) return a ?? b;
  return { txPackets: a.txPackets + b.txPackets, txBytes: a.txBytes + b.txBytes, rxPackets: a.rxPackets + b.rxPackets, rxBytes: a.rxBytes + b.rxBytes };
}

/** Drops above zero, as plain numbers, from the data plane's counters. */
export function dropsOf(counters: Record<string, bigint> | undefined): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(counters ?? {})) if (/_drop_/.test(k) && v > 0n) out[k] = Number(v);
  return out;
}

/** JSON-safe and CBOR-safe: undefined fields dropped. */
export function plain<T>(v: T): T {
  return JSON.parse(JSON.stringify(v)) as T;
}
