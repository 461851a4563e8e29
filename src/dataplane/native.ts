/** Loads the N-API addon (native/build/Release/tulle.node) and types what it exports. */
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { existsSync } from 'node:fs';
import { TulleError } from '../util/errors.js';

export interface NativeStartOptions {
  tunName?: string;
  netns?: string;
  bindAddress?: string;
  port?: number;
  /** a second set of sockets, IPv6 only, on this port (bindAddress must then be IPv4) */
  ipv6Port?: number;
  mtu?: number;
  queues?: number;
  offload?: boolean | OffloadOptions;
  encrypted?: boolean;
  publicKey?: Uint8Array;
  rekeyAfterMs?: number;
  rejectAfterMs?: number;
  onEvents?: () => void;
}

/** Offloads to ask for; each defaults to true but inlineReplies (see native/src/offload.h). */
export interface OffloadOptions {
  /** TUN_F_CSUM: the kernel leaves checksums for us to complete */
  csum?: boolean;
  /** TUN_F_TSO4/6: TUN reads return TCP super-packets */
  tso?: boolean;
  /** TUN_F_USO4/6: TUN reads return UDP super-packets */
  uso?: boolean;
  /** UDP_SEGMENT: one sendmsg per train of datagrams */
  gso?: boolean;
  /** UDP_GRO: one recvmsg per train of datagrams */
  gro?: boolean;
  /** userspace GRO: segments of a flow written to the TUN as one super-packet */
  coalesce?: boolean;
  /** after its TUN writes the inbound thread forwards what the kernel answered (ACKs, replies);
   * default false: no gain measured on the 2-core test machine */
  inlineReplies?: boolean;
  /** microseconds (0..1000) the outbound thread stays awake after a small batch, handling the
   * answer itself instead of waking the inbound thread (native/src/offload.h); 0 = never */
  spinUs?: number;
  /** the inbound thread writes through a TUN queue of its own, so the kernel steers what answers
   * it (echo replies, ACKs, responses) back to that queue, and forwards it itself: the outbound
   * thread is not woken for answers (native/src/offload.h) */
  replyQueue?: boolean;
}

/** What the kernel accepted. */
export interface OffloadState {
  enabled: boolean;
  vnetHeader: boolean;
  csum: boolean;
  tso: boolean;
  uso: boolean;
  gso: boolean;
  gro: boolean;
  coalesceTcp: boolean;
  coalesceUdp: boolean;
  /** queues > 1: inbound datagrams go to a queue by their inner flow (native/src/reuseport.c) */
  reuseportInnerFlow: boolean;
  inlineReplies: boolean;
  spinUs: number;
  replyQueue: boolean;
}

export interface NativeAddon {
  start(o: NativeStartOptions): { handle: object; tunName: string; port: number; ipv6Port?: number; counters: ArrayBuffer; offload: OffloadState };
  apply(handle: object, commands: Uint8Array): void;
  stop(handle: object): void;
  cpuNs(handle: object): number;
  counterNames(): string[];
  routeLookup(commands: Uint8Array, queries: Uint8Array): Uint32Array;
  counterSlots: number;
  /** Per-peer counters of ids block * peerBlockPeers .. (block + 1) * peerBlockPeers - 1, laid out
   * [queue][id % peerBlockPeers][peerCounterNames()] as u64; null until a peer in the block was
   * set. The same ArrayBuffer every time (the handle keeps it). */
  peerCounterBlock(handle: object, block: number): ArrayBuffer | null;
  /** tx_packets, tx_bytes, rx_packets, rx_bytes, then the drop reasons (names as counterNames()) */
  peerCounterNames(): string[];
  peerBlockPeers: number;
  /** peer ids are below this */
  maxPeers: number;
  /** how this build of the addon was made (N-API version, optimised or sanitized, compiler, date) */
  buildInfo: string;
  /** Test face of native/src/gso.c: the segments, or a negative gso_error. */
  offloadSplit(vnetHdr: Uint8Array, packet: Uint8Array): Uint8Array[] | number;
  /** Micro-benchmark of one C hot-path stage (native/src/micro-bench.c). */
  microBench(name: 'split' | 'coalesce' | 'coalesce-trusted' | 'single' | 'single-trusted' | 'csum' | 'complete' | 'lookup' | 'seal' | 'open' | 'seal-small' | 'open-small', iterations: number): { nsPerOp: number; nsPerUnit: number; unit: string };
  /** Test face of native/src/gro.c. */
  offloadCoalesce(packets: Uint8Array[], tcp: boolean, udp: boolean, trusted?: boolean): Array<{ vnet: Uint8Array; packet: Uint8Array; segments: number }>;
  // encrypted mode (native/src/addon-wg.c)
  drainEvents(handle: object): Uint8Array | null;
  sendRaw(handle: object, address: string, port: number, bytes: Uint8Array): boolean;
  peerActivity(handle: object, ids: Uint32Array): Float64Array;
  peerEndpoint(handle: object, id: number): [string, number] | null;
  monotonicMs(): number;
  aeadSeal(key: Uint8Array, counter: bigint, plaintext: Uint8Array): Uint8Array | null;
  aeadOpen(key: Uint8Array, counter: bigint, ciphertext: Uint8Array): Uint8Array | null;
  aeadSealParts(key: Uint8Array, counter: bigint, p1: Uint8Array, p2: Uint8Array, p3: Uint8Array): Uint8Array;
  /** The path new AEAD contexts use: node's OpenSSL primitives directly, or EVP; sets it when given. */
  aeadPath(set?: 'evp' | 'direct'): 'evp' | 'direct';
  replayCheck(counters: BigUint64Array): Uint8Array;
  /** The native BLAKE2s (mac1 checks), for differential tests. */
  blake2s(key: Uint8Array, data: Uint8Array, outLen: number): Uint8Array;
  /** sd_notify(3): one datagram to $NOTIFY_SOCKET (native/src/sd-notify.c); 0 or -errno */
  sdNotify(socketPath: string, message: string): number;
}

function findRoot(): string {
  // dist/src/dataplane or src/dataplane: walk up to the package root
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!existsSync(path.join(dir, 'package.json'))) {
    const up = path.dirname(dir);
    if (up === dir) throw new TulleError('ERR_TULLE_ADDON', 'cannot find the tulle package root');
    dir = up;
  }
  return dir;
}

let addon: NativeAddon | undefined;

/** TULLE_SANITIZE=1: the ASan/UBSan build of scripts/build-sanitized-addon.sh (the ASan runtime must
 * be preloaded, see scripts/sanitize-tests.sh); inherited by every daemon a test spawns. */
export function addonPath(env: NodeJS.ProcessEnv = process.env): string {
  const root = findRoot();
  return env.TULLE_SANITIZE === '1'
    ? path.join(root, 'native', 'build-sanitize', 'tulle.node')
    : path.join(root, 'native', 'build', 'Release', 'tulle.node');
}

export function loadAddon(): NativeAddon {
  if (addon) return addon;
  const file = addonPath();
  try {
    addon = createRequire(import.meta.url)(file) as NativeAddon;
  } catch (cause) {
    throw new TulleError('ERR_TULLE_ADDON', process.env.TULLE_SANITIZE === '1'
        ? `cannot load the sanitized data plane ${file}: build it with scripts/build-sanitized-addon.sh and preload the ASan runtime (scripts/sanitize-tests.sh)`
        : `cannot load the native data plane ${file}: run 'npm install' to build it`, {
      cause,
    });
  }
  return addon;
}
