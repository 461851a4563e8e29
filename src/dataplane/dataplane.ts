/**
 * The one narrow interface between the control plane and the packet loop:
 * start -> apply(commands) ... -> counters() -> stop().
 */
import os from 'node:os';
import { encodeCommands, type Command } from './commands.js';
import { TulleError } from '../util/errors.js';
import { loadAddon, type NativeStartOptions, type OffloadOptions, type OffloadState } from './native.js';

export type { Command } from './commands.js';
export type { OffloadOptions, OffloadState } from './native.js';

export interface DataPlaneOptions {
  /** TUN device name (default tulle0); created in `netns` if given, else in our own netns. */
  tunName?: string;
  /** /run/netns/NAME or /proc/PID/ns/net: create the TUN and socket there. */
  netns?: string;
  /** Underlay address to bind the UDP socket to (default 0.0.0.0). */
  bindAddress?: string;
  /** UDP port (default 8285, flannel's UDP backend; 0 = any). */
  port?: number;
  /** Mode "separate" (flanneld's two WireGuard devices): a second set of sockets, IPv6 only, bound
   * to [::] on this port (0 = any), one per queue; the first set (bindAddress must be IPv4) then
   * carries IPv4 only. A peer's datagrams leave from the socket of its endpoint's family. */
  ipv6Port?: number;
  /** TUN MTU; inbound packets larger than this are dropped as oversized. */
  mtu: number;
  /** TUN queues, each with its own UDP socket (SO_REUSEPORT) and thread pair; a flow stays on
   * one queue both ways. Default 1 here; the daemon's config default is defaultQueues(). */
  queues?: number;
  /** Kernel offloads (native/src/offload.h): true/undefined = all the kernel accepts, false = the
   * plain loop without a virtio-net header, or an object to force single offloads off. */
  offload?: boolean | OffloadOptions;
  /** Encrypted mode: WireGuard transport data; sessions come from src/wireguard/. */
  encrypted?: boolean;
  /** Encrypted mode: our static public key. Handshake initiations and responses reach
   * drainEvents() only when their mac1 verifies against it (none without it). */
  publicKey?: Uint8Array;
  /** Session ages for rekey / reject (defaults 120 s / 180 s; tests shorten them). */
  rekeyAfterMs?: number;
  rejectAfterMs?: number;
  /** Encrypted mode: called (on the JS thread) when events wait in drainEvents(). */
  onEvents?: () => void;
}

export type Counters = Record<string, bigint>;

/** One peer's traffic, summed over queues: datagrams sent to it and accepted from it, with
 * their UDP payload bytes (native/src/dataplane.h, per-peer counters). */
export interface PeerTraffic {
  txPackets: number;
  txBytes: number;
  rxPackets: number;
  rxBytes: number;
}

export const DEFAULT_MAX_QUEUES = 4;

/** The default for the daemon: one queue per core, at most DEFAULT_MAX_QUEUES. */
export function defaultQueues(): number {
  return Math.max(1, Math.min(os.availableParallelism(), DEFAULT_MAX_QUEUES));
}

export interface DataPlane {
  readonly tunName: string;
  readonly port: number;
  /** the IPv6 sockets' port when started with ipv6Port */
  readonly ipv6Port?: number;
  /** The offloads in effect (what was asked for and accepted). */
  readonly offload: OffloadState;
  apply(commands: readonly Command[]): void;
  /** Sum over queues, read from shared memory (no call into native code). */
  counters(): Counters;
  /** The same, queue by queue. */
  countersPerQueue(): Counters[];
  /** A peer's traffic from shared memory (no call into native code but the first time a block
   * of ids is read); undefined while no peer of its block of ids was ever set. */
  peerTraffic(id: number): PeerTraffic | undefined;
  /** The drops pinned on a peer (native/src/dataplane.h), by global counter name
   * (inbound_drop_spoofed_source, outbound_drop_send_error, ...), only those above zero. */
  peerDrops(id: number): Record<string, number>;
  /** CPU time of the packet threads so far, seconds. */
  cpuSeconds(): number;
  stop(): void;
  /** Encrypted mode: raw event records (see src/wireguard/events.ts), or null when none wait. */
  drainEvents(): Uint8Array | null;
  /** Encrypted mode: sends one datagram (a handshake message) from the data plane's socket. */
  sendRaw(address: string, port: number, bytes: Uint8Array): boolean;
  /** Encrypted mode: per peer [last data sent, last data received, last auth received, last sent]
   * (ms) and the number of endpoint moves (roaming) so far: 5 numbers per id. */
  peerActivity(ids: Uint32Array): Float64Array;
  /** Encrypted mode: where the data plane sends to a peer now (it follows roaming). */
  peerEndpoint(id: number): { address: string; port: number } | undefined;
  /** The clock of peerActivity, ms. */
  monotonicMs(): number;
}

export function startDataPlane(options: DataPlaneOptions): DataPlane {
  const addon = loadAddon();
  const o: NativeStartOptions = { port: 8285, tunName: 'tulle0', ...options };
  const started = addon.start(o);
  const names = addon.counterNames();
  const slots = addon.counterSlots;
  const view = new BigUint64Array(started.counters);
  const queues = view.length / slots;
  const peerNames = addon.peerCounterNames();
  const stride = peerNames.length;
  if (peerNames.slice(0, 4).join() !== 'tx_packets,tx_bytes,rx_packets,rx_bytes') throw new TulleError('ERR_TULLE_ADDON', `the native addon's per-peer counters are not laid out as this code reads them (${peerNames.join(', ')}): rebuild it`);
  const blockPeers = addon.peerBlockPeers;
  const blocks: BigUint64Array[] = [];
  /** the u64 view of id's block and the index of its counters in queue 0, or undefined */
  const peerAt = (id: number): [BigUint64Array, number] | undefined => {
    if (!Number.isInteger(id) || id < 0 || id >= addon.maxPeers) return undefined;
    const b = Math.floor(id / blockPeers);
    if (!blocks[b]) {
      const buf = addon.peerCounterBlock(started.handle, b);
      if (!buf) return undefined; // no peer in this block yet: asked again next time
      blocks[b] = new BigUint64Array(buf);
    }
    return [blocks[b], (id % blockPeers) * stride];
  };
  /** counter k of a peer, summed over queues */
  const peerSum = (view: BigUint64Array, at: number, k: number): bigint => {
    let sum = 0n;
    for (let q = 0; q < queues; q++) sum += view[q * blockPeers * stride + at + k]!;
    return sum;
  };
  let stopped = false;
  return {
    tunName: started.tunName,
    port: started.port,
    ...(started.ipv6Port !== undefined ? { ipv6Port: started.ipv6Port } : {}),
    offload: started.offload,
    apply(commands) {
      if (!commands.length) return;
      const encoded = encodeCommands(commands);
      try {
        addon.apply(started.handle, encoded);
      } finally {
        encoded.fill(0); // it may hold session keys: none stays behind in a buffer nobody owns
      }
    },
    counters() {
      const out: Counters = {};
      names.forEach((name, i) => {
        let sum = 0n;
        for (let q = 0; q < queues; q++) sum += view[q * slots + i]!;
        out[name] = sum;
      });
      return out;
    },
    countersPerQueue() {
      return Array.from({ length: queues }, (_, q) => Object.fromEntries(names.map((name, i) => [name, view[q * slots + i]!])));
    },
    peerTraffic(id) {
      const p = peerAt(id);
      if (!p) return undefined;
      const [view, at] = p;
      const t = (k: number) => Number(peerSum(view, at, k));
      return { txPackets: t(0), txBytes: t(1), rxPackets: t(2), rxBytes: t(3) };
    },
    peerDrops(id) {
      const out: Record<string, number> = {};
      const p = peerAt(id);
      if (!p) return out;
      for (let k = 4; k < stride; k++) {
        const v = peerSum(p[0], p[1], k);
        if (v > 0n) out[peerNames[k]!] = Number(v);
      }
      return out;
    },
    cpuSeconds() {
      return addon.cpuNs(started.handle) / 1e9;
    },
    drainEvents() {
      return stopped ? null : addon.drainEvents(started.handle);
    },
    sendRaw(address, port, bytes) {
      return !stopped && addon.sendRaw(started.handle, address, port, bytes);
    },
    peerActivity(ids) {
      return addon.peerActivity(started.handle, ids);
    },
    peerEndpoint(id) {
      const ep = stopped ? null : addon.peerEndpoint(started.handle, id);
      return ep ? { address: ep[0], port: ep[1] } : undefined;
    },
    monotonicMs() {
      return addon.monotonicMs();
    },
    stop() {
      if (stopped) return;
      stopped = true;
      addon.stop(started.handle);
    },
  };
}
