/**
 * The lease manager's interface: what it is given and what it tells (lease-manager.ts).
 */
import type { Logger } from 'pino';
import type { NetworkConfig } from '../config/network-config.js';
import type { Registry } from '../registry/registry.js';
import type { Clock } from '../util/clock.js';
import type { LeaseTable } from './lease-diff.js';
import type { Lease, LeaseAttrs, LeaseSubnets } from './lease.js';

export interface LeaseManagerOptions {
  registry: Registry;
  config: NetworkConfig;
  attrs: LeaseAttrs;
  /** subnets this node held before (state dir or subnet.env) */
  previous?: LeaseSubnets | undefined;
  ttlMs: number;
  renewMarginMs: number;
  clock: Clock;
  random: () => number;
  log: Logger;
  /** lost races tolerated per acquisition (default 20) */
  maxAttempts?: number;
  /**
   * called with every new lease table (after acquire: our own lease only; start(), which makes
   * the table of every lease; events, resyncs). `changed`: the subnets
   * added, changed or removed since the previous call (after watch events); undefined after a
   * listing (compare everything). The table is the manager's own, updated in place: read it
   * during the call, copy it to keep it.
   */
  onTable?: (table: LeaseTable, changed?: ReadonlySet<string>) => void;
  /** called when this node's subnet changes after a re-acquire */
  onOwnLease?: (lease: OwnLease) => void;
}

export interface OwnLease extends Lease {
  leaseId: string;
  expiresAt: number;
}

export type EtcdState = 'connecting' | 'connected' | 'disconnected';

export interface LeaseStatus {
  etcd: EtcdState;
  since: number;
  lastError: string | undefined;
  lease: { subnet: string; ipv6Subnet?: string | undefined; expiresAt: number; renewedAt: number; renewals: number } | undefined;
  revision: number;
  leases: number;
  reacquiring: boolean;
}
