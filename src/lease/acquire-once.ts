/**
 * One try at a lease from one look at the registry (an AcquireView), in flanneld's order
 * (pkg/subnet/etcd/local_manager.go tryAcquireLease):
 *
 *   1. a lease with our PublicIP that no longer fits the config is deleted (as flanneld does)
 *   2. a lease with our PublicIP is reused: compare-and-put on its mod revision
 *   3. else our previous subnet if it is free and in range, else a random free subnet, created
 *      with If(version(key) == 0 && nothing that could overlap it created since the look)
 *
 * Returns the lease, or which new subnet a create was refused for (the caller looks at what
 * changed and retries), or neither (something changed under us: look again from scratch).
 */
import type { Logger } from 'pino';
import type { NetworkConfig } from '../config/network-config.js';
import type { Registry } from '../registry/registry.js';
import type { Clock } from '../util/clock.js';
import { TulleError } from '../util/errors.js';
import type { AcquireView } from './acquire-view.js';
import { encodeLeaseValue, leaseKeyName, type LeaseAttrs, type LeaseSubnets } from './lease.js';
import type { OwnLease } from './lease-manager-types.js';
import { chooseLease, fitsConfig, subnetCount } from './subnet-allocator.js';

export interface AcquireContext {
  registry: Registry;
  config: NetworkConfig;
  attrs: LeaseAttrs;
  ttlMs: number;
  clock: Clock;
  random: () => number;
  log: Logger;
}

export interface TryResult {
  lease?: OwnLease;
  /** the new subnets a create was refused for */
  tried?: LeaseSubnets;
}

export async function acquireOnce(c: AcquireContext, view: AcquireView, previous: LeaseSubnets | undefined): Promise<TryResult> {
  const { registry, config, attrs, ttlMs, clock } = c;
  const ttlSeconds = Math.max(1, Math.ceil(ttlMs / 1000));
  const value = encodeLeaseValue(attrs);
  // a lease of ours that no longer fits the config (Network, SubnetLen, SubnetMin/Max changed)
  // is deleted, as flanneld does, so it neither lingers for 24 h nor blocks the range
  for (const { lease: l } of [...view.ours.values()]) {
    if (fitsConfig(config, l)) continue;
    c.log.warn(
      { subnet: l.subnet, ipv6Subnet: l.ipv6Subnet, network: config.ipv4?.network, ipv6Network: config.ipv6?.network },
      'our lease does not fit the network config; deleting it (as flanneld does)',
    );
    if (!(await registry.deleteSubnet(leaseKeyName(l), l.modRevision))) return {};
    view.forget(l);
  }
  const mine = view.ours.values().next().value;
  if (mine) {
    const { lease: l, leaseId } = mine;
    const r = await registry.updateSubnet(leaseKeyName(l), value, ttlSeconds, { modRevision: l.modRevision, leaseId });
    if (!r.ok) return {};
    return { lease: { subnet: l.subnet, ipv6Subnet: l.ipv6Subnet, attrs, modRevision: r.modRevision, leaseId: r.leaseId, expiresAt: clock.now() + ttlMs } };
  }
  const choice = chooseLease({ config, taken: view.taken, previous, random: c.random });
  if ('full' in choice) {
    const range = (choice.full === 4 ? config.ipv4 : config.ipv6)!;
    throw new TulleError(
      'ERR_TULLE_NO_SUBNET',
      `no free subnet: all ${subnetCount(range)} /${range.subnetLen} subnets in ${range.subnetMin}..${range.subnetMax} of ${range.network} are leased`,
    );
  }
  const subnets = { subnet: choice.subnet, ipv6Subnet: choice.ipv6Subnet };
  // fails when a lease that could overlap ours was created since the view: look at what changed, retry
  const r = await registry.createSubnet(leaseKeyName(subnets), value, ttlSeconds, view.revision, choice.guardAll);
  if (!r.ok) return { tried: subnets };
  return { lease: { ...subnets, attrs, modRevision: r.modRevision, leaseId: r.leaseId, expiresAt: clock.now() + ttlMs } };
}
