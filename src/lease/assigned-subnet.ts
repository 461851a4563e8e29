/**
 * Acquiring where the registry assigns this node's subnets (Kubernetes: the node's pod CIDRs):
 * there is nothing to choose. Ask until there are some (one log line per reason for waiting; the
 * reason is kept for /healthz), check them against the network config as flanneld's AcquireLease
 * does (else fatal), and claim them: the registry writes our value there and says how it stored
 * it (the public-ip overwrites).
 *
 *   each enabled family   needs its subnet          (flanneld: "missing IPv6 address on …")
 *                         inside its Network         (flanneld: "… doesn't contain … PodCIDR")
 *   a disabled family     its subnet, if any, is not part of the lease
 */
import type { Logger } from 'pino';
import type { NetworkConfig } from '../config/network-config.js';
import type { Registry, WriteResult } from '../registry/registry.js';
import { TulleError } from '../util/errors.js';
import { netContains, parseNet } from '../util/ip.js';
import { decodeLeaseValue, encodeLeaseValue, leaseKeyName, leaseSubnets, type LeaseAttrs, type LeaseSubnets } from './lease.js';

export class AssignedSubnet {
  /** why there is no subnet yet, as last logged; undefined once there is one */
  waiting: string | undefined;
  private readonly registry: Registry;
  private readonly config: Pick<NetworkConfig, 'ipv4' | 'ipv6'>;
  private readonly log: Logger;

  constructor(registry: Registry, config: Pick<NetworkConfig, 'ipv4' | 'ipv6'>, log: Logger) {
    this.registry = registry;
    this.config = config;
    this.log = log;
  }

  /** The assigned subnets, or undefined when there are none yet (`waiting` says why). Registry errors propagate. */
  async ask(): Promise<LeaseSubnets | undefined> {
    const a = await this.registry.assignedSubnet!();
    if ('waiting' in a) {
      if (this.waiting !== a.waiting) this.log.warn({ reason: a.waiting }, `${a.waiting}; waiting for it (not ready)`);
      this.waiting = a.waiting;
      return undefined;
    }
    if ('refused' in a) throw new TulleError('ERR_TULLE_POD_CIDR', a.refused);
    const { ipv4, ipv6 } = this.config;
    const got = [a.ipv4, a.ipv6].filter(Boolean).join(', ');
    for (const [range, subnet, fam, label] of [[ipv4, a.ipv4, 4, ''], [ipv6, a.ipv6, 6, 'IPv6 ']] as const) {
      if (!range) continue;
      if (subnet === undefined) {
        throw new TulleError(
          'ERR_TULLE_POD_CIDR',
          `missing IPv${fam} address on spec.podCIDRs: this node's pod CIDRs are ${got}, but the network config enables IPv${fam}${fam === 6 ? ' (EnableIPv6)' : ' (EnableIPv4, the default)'}; kube-controller-manager must allocate node CIDRs in every family the network enables`,
        );
      }
      const net = parseNet(range.network, fam);
      const sub = parseNet(subnet, fam);
      if (sub.len < net.len || !netContains(net, sub.base)) {
        throw new TulleError('ERR_TULLE_POD_CIDR', `subnet "${range.network}" specified in the network config doesn't contain "${subnet}", this node's ${label}PodCIDR`);
      }
    }
    const subnets = leaseSubnets(ipv4 ? a.ipv4 : undefined, ipv6 ? a.ipv6 : undefined);
    if (this.waiting !== undefined) this.log.info({ subnet: subnets.subnet, ipv6Subnet: subnets.ipv6Subnet }, 'our subnet is assigned now');
    this.waiting = undefined;
    return subnets;
  }

  /** Writes our value at the subnets; undefined when the assignment changed meanwhile. */
  async claim(subnets: LeaseSubnets, attrs: LeaseAttrs, ttlSeconds: number): Promise<{ r: WriteResult; attrs: LeaseAttrs } | undefined> {
    const r = await this.registry.createSubnet(leaseKeyName(subnets), encodeLeaseValue(attrs), ttlSeconds);
    return r.ok ? { r, attrs: storedAttrs(r, attrs) } : undefined;
  }
}

/** The stored attrs when the registry rewrote the value (Kubernetes: public-ip-overwrite), else ours. */
export function storedAttrs(r: WriteResult, attrs: LeaseAttrs): LeaseAttrs {
  const d = r.value === undefined ? undefined : decodeLeaseValue(r.value);
  return d?.ok ? d.attrs : attrs;
}
