/**
 * Acquiring where the registry assigns this node's subnet (Kubernetes: node.spec.podCIDR): there
 * is nothing to choose. Ask until there is one (one log line per reason for waiting; the reason
 * is kept for /healthz), check that it lies in the Network (else fatal, as flanneld), and claim
 * it: the registry writes our value there and says how it stored it (public-ip-overwrite).
 */
import type { Logger } from 'pino';
import type { Registry, WriteResult } from '../registry/registry.js';
import { TulleError } from '../util/errors.js';
import { netContains, parseNet } from '../util/ip.js';
import { decodeLeaseValue, encodeLeaseValue, leaseKeyName, leaseSubnets, type LeaseAttrs } from './lease.js';

export class AssignedSubnet {
  /** why there is no subnet yet, as last logged; undefined once there is one */
  waiting: string | undefined;
  private readonly registry: Registry;
  /** the IPv4 Network; undefined in an IPv6-only config, which this mode does not take yet */
  private readonly network: string | undefined;
  private readonly log: Logger;

  constructor(registry: Registry, network: string | undefined, log: Logger) {
    this.registry = registry;
    this.network = network;
    this.log = log;
  }

  /** The assigned subnet, or undefined when there is none yet (`waiting` says why). Registry errors propagate. */
  async ask(): Promise<string | undefined> {
    const a = await this.registry.assignedSubnet!();
    if ('waiting' in a) {
      if (this.waiting !== a.waiting) this.log.warn({ reason: a.waiting }, `${a.waiting}; waiting for it (not ready)`);
      this.waiting = a.waiting;
      return undefined;
    }
    if (this.network === undefined) {
      throw new TulleError('ERR_TULLE_POD_CIDR', 'the network config has no IPv4 Network (EnableIPv4: false): the Kubernetes subnet manager takes IPv4 podCIDRs only (dual stack in this mode is not built yet)');
    }
    const net = parseNet(this.network, 4);
    const sub = parseNet(a.subnet, 4);
    if (sub.len < net.len || !netContains(net, sub.base)) {
      throw new TulleError('ERR_TULLE_POD_CIDR', `subnet "${this.network}" specified in the network config doesn't contain "${a.subnet}", this node's PodCIDR`);
    }
    if (this.waiting !== undefined) this.log.info({ subnet: a.subnet }, 'our subnet is assigned now');
    this.waiting = undefined;
    return a.subnet;
  }

  /** Writes our value at the subnet; undefined when the assignment changed meanwhile. */
  async claim(subnet: string, attrs: LeaseAttrs, ttlSeconds: number): Promise<{ r: WriteResult; attrs: LeaseAttrs } | undefined> {
    const r = await this.registry.createSubnet(leaseKeyName(leaseSubnets(subnet, undefined)), encodeLeaseValue(attrs), ttlSeconds);
    return r.ok ? { r, attrs: storedAttrs(r, attrs) } : undefined;
  }
}

/** The stored attrs when the registry rewrote the value (Kubernetes: public-ip-overwrite), else ours. */
export function storedAttrs(r: WriteResult, attrs: LeaseAttrs): LeaseAttrs {
  const d = r.value === undefined ? undefined : decodeLeaseValue(r.value);
  return d?.ok ? d.attrs : attrs;
}
