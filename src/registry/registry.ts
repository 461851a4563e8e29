/**
 * The raw lease registry: storage operations with no policy (design.md §3; flannel splits its
 * etcd registry the same way). Names are the last key element ("10.244.3.0-24"); the prefix,
 * etcd leases and revisions stay inside. The lease manager adds the policy on top.
 */
import type { LeasePage } from './lease-page.js';

export interface RegistryEntry {
  name: string;
  value: string;
  modRevision: number;
  /** the storage's own lease id (etcd lease), opaque; "0" when none */
  leaseId: string;
}

export type WatchEvent =
  | { type: 'put'; name: string; value: string; modRevision: number; leaseId: string }
  | { type: 'delete'; name: string; modRevision: number };

export interface WatchSink {
  /** events in revision order; `revision` is the store revision they bring us to */
  events(events: WatchEvent[], revision: number): void;
  /** the watch cannot resume where it was (history compacted, watch canceled): re-list and diff */
  resync(reason: string): void;
  /** the connection to the store went down (with why) or came back */
  connection(up: boolean, error?: Error): void;
}

export interface Watch {
  cancel(): Promise<void>;
}

export interface WriteResult {
  ok: boolean;
  modRevision: number;
  leaseId: string;
  /** the value as stored, when the store rewrites what it was given (Kubernetes: public-ip-overwrite) */
  value?: string;
}

/**
 * The subnets someone else assigned this node, one per family it has (Kubernetes: the node's
 * pod CIDRs); or why there are none yet (the manager waits); or why they can never make a lease
 * (fatal, as in flanneld: three pod CIDRs).
 */
export type Assignment = { ipv4?: string | undefined; ipv6?: string | undefined } | { waiting: string } | { refused: string };

/** The address families a network config enables (flanneld's EnableIPv4 / EnableIPv6). */
export interface NetworkFamilies {
  readonly ipv4: boolean;
  readonly ipv6: boolean;
}

/** The key /healthz and `tulle status` report the store's state under: its own name. */
export type StoreKey = 'etcd' | 'kubeApi';

export interface Registry {
  /** for log lines, when it is not etcd (e.g. "the Kubernetes API") */
  readonly storeName?: string;
  /** the key the store's state is reported under (default 'etcd') */
  readonly storeKey?: StoreKey;
  /**
   * Told the network's families before anything is listed, where the store's leases depend on
   * them (Kubernetes: which pod CIDRs and annotations make a node's lease, as flanneld's nodeToLease).
   */
  useFamilies?(families: NetworkFamilies): void;
  /** the network config JSON text, or undefined when the key is absent */
  getNetworkConfig(): Promise<string | undefined>;
  listSubnets(): Promise<{ entries: RegistryEntry[]; revision: number }>;
  /**
   * The same listing as pages of bytes (lease-page.ts), where the store can give them without
   * making strings (etcd): an acquisition reads the key names and searches the values there.
   */
  listSubnetPages?(): Promise<{ pages: LeasePage[]; revision: number }>;
  /**
   * The entries created or changed after `revision` (mod revision > it), at one revision: what a
   * node that lost a race (or whose create was refused) needs to look again, without listing every
   * lease. Deletions are not in it. A filter on the current keys, not a read of history: a
   * compacted `revision` is fine.
   */
  listSubnetsSince?(revision: number): Promise<{ entries: RegistryEntry[]; revision: number }>;
  /**
   * If(version(key) == 0) Then Put(key, value, lease(ttl)): ok=false when the key exists. With
   * `unchangedSince`, also If(no key that could overlap this subnet — overlap-guard.ts — was
   * created after that revision): a subnet chosen from a listing at that revision cannot overlap
   * a lease of another size made since, and creates of unrelated subnets do not refuse each other.
   * `guardAll`: If(no key at all was created after that revision) (an unpaired IPv6 subnet).
   */
  createSubnet(name: string, value: string, ttlSeconds: number, unchangedSince?: number, guardAll?: boolean): Promise<WriteResult>;
  /** If(mod_revision(key) == expectModRevision) Then Delete(key): false when it changed or is gone */
  deleteSubnet(name: string, expectModRevision: number): Promise<boolean>;
  /**
   * If(mod_revision(key) == expectModRevision) Then Put(key, value, new lease(ttl)); the old
   * lease is revoked afterwards. ok=false when someone else changed or deleted the key.
   */
  updateSubnet(name: string, value: string, ttlSeconds: number, expect: { modRevision: number; leaseId: string }): Promise<WriteResult>;
  /** Watches subnets from `fromRevision` (inclusive), resuming by itself after disconnects. */
  watchSubnets(fromRevision: number, sink: WatchSink): Watch;
  close(): Promise<void>;
  /**
   * Only in stores where this node's subnet is assigned by someone else (Kubernetes:
   * node.spec.podCIDR). The lease manager then takes that subnet instead of choosing one:
   * createSubnet/updateSubnet claim it (ok=false: the assignment changed) and nothing is deleted.
   */
  assignedSubnet?(): Promise<Assignment>;
  /** Told once the node forwards (Kubernetes: the NodeNetworkUnavailable condition); may retry, never throws. */
  nodeReady?(): Promise<void>;
}
